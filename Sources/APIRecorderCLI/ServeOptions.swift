import APIRecorder
import APIRecorderProxy
import ArgumentParser
import Foundation

/// The proxy's flags, shared by `serve` and `run`.
struct ServeOptions: ParsableArguments {
    @Option(help: "Address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "Port to listen on; 0 picks a free one (default: 8555 for serve, a free one for run).")
    var port: Int?

    @OptionGroup var recording: RecordingOptions

    @Option(help: "Write the session report to this file, as JSON, when the server stops (for api-recorder prune).")
    var reportFile: String?

    @Flag(help: "Add the session report to the one already in --report-file, under a lock (parallel test workers).")
    var mergeReport = false

    @OptionGroup var routing: RouteOptions

    @Option(help: "Replay pacing of streams: none (as fast as possible) or recorded (the recorded gaps).")
    var pace = "none"

    @Option(help: "The largest request body accepted, in bytes (larger: 413).")
    var maxBody = 32 * 1024 * 1024

    @Option(
        help: "The largest request head (request line and headers) accepted, in bytes, 1024 to 81920 (larger: 431)."
    )
    var maxHeaderBytes = 32 * 1024

    @Option(
        name: .customLong("allow-host"),
        help:
            "A name (or NAME:PORT) besides the loopback ones that a request's Host may give, such as a container's or CI service's name. Repeatable."
    )
    var allowHosts: [String] = []

    @Option(
        name: .customLong("allow-origin"),
        help:
            "A web origin (https://app.example) besides the loopback ones whose requests, and CORS preflights, are answered. Repeatable; null is never allowed."
    )
    var allowOrigins: [String] = []

    @Option(
        help:
            "Seconds an upstream may take to answer (to its response head, from when the request is sent) and between body bytes."
    )
    var upstreamTimeout: Double = 300

    @Option(help: "Seconds connecting to an upstream may take (a refused connection fails at once).")
    var connectTimeout: Double = 3

    @Option(help: "Requests in flight at once to one upstream host; more wait for a free connection.")
    var upstreamConnections = 64

    @Option(help: "Seconds a client connection may stay idle before it is closed (0: never).")
    var idleTimeout: Double = 60

    @Option(help: "Seconds a client may take to send a request's headers, from its first byte (0: no limit).")
    var headerTimeout: Double = 10

    @Option(help: "Seconds a graceful shutdown waits for in-flight exchanges before cancelling them.")
    var shutdownGrace: Double = 10

    @Option(help: "How many exchanges GET /__recorder/journal keeps (0: none).")
    var journalSize = 1000

    /// The configuration these flags describe.
    /// - Parameters:
    ///   - defaultPort: the port when `--port` is not given.
    ///   - allPresetsByDefault: every preset when no `--provider` is given (`run`).
    func makeConfiguration(defaultPort: Int, allPresetsByDefault: Bool) throws -> ProxyConfiguration {
        var configuration = ProxyConfiguration()
        configuration.host = host
        configuration.port = port ?? defaultPort
        configuration.root = absolute(recording.root)
        configuration.fallbackDirectories = recording.fallbackDirectories
        configuration.reportFile = reportFile.map(absolute)
        if mergeReport {
            guard reportFile != nil else { throw ValidationError("--merge-report needs --report-file PATH") }
            configuration.mergesReport = true
        }
        guard maxBody >= 0 else { throw ValidationError("--max-body must be 0 or more") }
        configuration.maxBodyBytes = maxBody
        // NIO's HTTP decoder refuses heads past 80 KiB whatever the flag says.
        guard (1024...81_920).contains(maxHeaderBytes) else {
            throw ValidationError("--max-header-bytes must be between 1024 and 81920, not \(maxHeaderBytes)")
        }
        configuration.maxHeaderBytes = maxHeaderBytes
        for origin in allowOrigins {
            guard origin.lowercased() != "null", origin.contains("://") else {
                throw ValidationError("--allow-origin takes an origin such as https://app.example, not \(origin)")
            }
        }
        configuration.allowedHosts = allowHosts
        configuration.allowedOrigins = allowOrigins
        configuration.upstreamTimeout = try seconds(upstreamTimeout, "--upstream-timeout")
        configuration.connectTimeout = try seconds(connectTimeout, "--connect-timeout")
        // 0 turns the connection timeouts off.
        configuration.idleTimeout = idleTimeout == 0 ? nil : try seconds(idleTimeout, "--idle-timeout")
        configuration.headerTimeout = headerTimeout == 0 ? nil : try seconds(headerTimeout, "--header-timeout")
        configuration.shutdownGrace = try seconds(shutdownGrace, "--shutdown-grace", allowZero: true)
        guard journalSize >= 0 else { throw ValidationError("--journal-size must be 0 or more") }
        configuration.journalSize = journalSize
        guard upstreamConnections >= 1 else { throw ValidationError("--upstream-connections must be at least 1") }
        configuration.upstreamConnections = upstreamConnections
        configuration.environment = ProcessInfo.processInfo.environment
        configuration.mode = try recording.resolvedMode(environment: configuration.environment)
        guard let pace = ReplayPace(rawValue: pace) else { throw ValidationError("--pace must be none or recorded") }
        configuration.pace = pace
        configuration.routes = try routing.routes(
            environment: configuration.environment,
            allPresetsByDefault: allPresetsByDefault
        )
        return configuration
    }

    /// A duration flag in seconds, checked.
    private func seconds(_ value: Double, _ flag: String, allowZero: Bool = false) throws -> Duration {
        guard value.isFinite, allowZero ? value >= 0 : value > 0 else {
            throw ValidationError("\(flag) takes a number of seconds\(allowZero ? "" : " above 0"), not \(value)")
        }
        return .milliseconds(Int64((value * 1000).rounded()))
    }

    private func absolute(_ path: String) -> String {
        URL(fileURLWithPath: path, relativeTo: URL(fileURLWithPath: FileManager.default.currentDirectoryPath))
            .standardizedFileURL.path
    }
}

/// Where recordings live and the mode: shared by `serve`, `run` and `tool`.
struct RecordingOptions: ParsableArguments {
    @Option(help: "live, record, replay or record-if-missing (default: from the environment, else replay).")
    var mode: String?

    @Option(help: "The recordings root (default: the current folder).")
    var root = "."

    @Option(
        name: .customLong("fallback-dir"),
        help:
            "A fallback folder for recordings without a test folder, relative to the root (default: recordings). Repeatable: look-ups try them in order, writes go to the first."
    )
    var fallbackDirs: [String] = []

    /// The fallback folders, `recordings` unless told otherwise.
    var fallbackDirectories: [String] { fallbackDirs.isEmpty ? ["recordings"] : fallbackDirs }

    /// `--mode`, else the mode variables of `environment`, else replay.
    func resolvedMode(environment: [String: String]) throws -> RecordingMode {
        guard let mode else {
            do {
                return try RecordingMode.fromEnvironment(environment)
            } catch {
                throw ValidationError(error.description)
            }
        }
        guard let parsed = RecordingMode(rawValue: mode) else {
            throw ValidationError(
                "--mode \(mode) is not one of: \(RecordingMode.allCases.map(\.rawValue).joined(separator: ", "))"
            )
        }
        return parsed
    }
}
