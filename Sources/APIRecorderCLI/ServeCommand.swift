import APIRecorder
import APIRecorderProxy
import ArgumentParser
import Foundation
import Logging
import Synchronization

/// `api-recorder serve`: the record/replay proxy.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the record/replay HTTP proxy.",
        discussion: """
            Point a client's base URL at http://HOST:PORT/NAME for each --upstream NAME=URL. Tests send \
            their id in the X-Test-ID header. The mode comes from --mode, else API_RECORDER_MODE, \
            OGX_TEST_INFERENCE_MODE or LLAMA_STACK_TEST_INFERENCE_MODE, else replay: nothing reaches \
            the network unless asked. SIGINT or SIGTERM stops the server after in-flight exchanges \
            (for at most --shutdown-grace seconds, after which they are cancelled and nothing partial is \
            written); a second signal exits at once.
            """
    )

    @Option(help: "Address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "Port to listen on; 0 picks a free one.")
    var port = 8555

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

    @Option(help: "Write the session report to this file, as JSON, when the server stops (for api-recorder prune).")
    var reportFile: String?

    @Option(name: .customLong("upstream"), help: "A route: NAME=URL forwards /NAME/rest to URL/rest. Repeatable.")
    var upstreams: [String] = []

    @Option(
        name: .customLong("recorded-base"),
        help: "NAME=URL: the base URL the route's recordings name (default: the upstream)."
    )
    var recordedBases: [String] = []

    @Option(
        name: .customLong("upstream-key"),
        help:
            "NAME=ENV_VAR: send $ENV_VAR upstream for the route, in place of the client's key (its key header, or Bearer) and of credentials in its query and body."
    )
    var upstreamKeys: [String] = []

    @Option(
        name: .customLong("adapter"),
        help:
            "NAME=auto|openai|ollama|http|mcp|gemini: the API rules for the route (default auto: /api/... as Ollama, ...:generateContent as Gemini, /messages and /interactions as plain HTTP, else OpenAI)."
    )
    var adapters: [String] = []

    @Option(help: "Replay pacing of streams: none (as fast as possible) or recorded (the recorded gaps).")
    var pace = "none"

    @Option(help: "The largest request body accepted, in bytes.")
    var maxBody = 32 * 1024 * 1024

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

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let logger = global.makeLogger(label: "api-recorder.serve")
        let configuration = try makeConfiguration()
        let routes = configuration.routes.map { route in
            route.recordedBase == route.upstream
                ? "\(route.name)=\(route.upstream)"
                : "\(route.name)=\(route.upstream) (recorded as \(route.recordedBase))"
        }
        let app = buildApplication(configuration, logger: logger) { port in
            // One line, flushed at once: scripts wait for it to learn the port.
            let line =
                "api-recorder listening on http://\(configuration.host):\(port) mode=\(configuration.mode.rawValue) "
                + "root=\(configuration.root) routes=\(routes.isEmpty ? "none" : routes.joined(separator: ","))\n"
            FileHandle.standardOutput.write(Data(line.utf8))
        }
        // A second SIGINT or SIGTERM during the graceful shutdown exits at once.
        let signals = SecondSignalExit(logger: logger)
        defer { signals.cancel() }
        try await runUntilSignalled(app, grace: configuration.shutdownGrace, logger: logger)
    }

    func makeConfiguration() throws -> ProxyConfiguration {
        var configuration = ProxyConfiguration()
        configuration.host = host
        configuration.port = port
        configuration.root = absolute(root)
        configuration.fallbackDirectories = fallbackDirs.isEmpty ? ["recordings"] : fallbackDirs
        configuration.reportFile = reportFile.map(absolute)
        configuration.maxBodyBytes = maxBody
        configuration.upstreamTimeout = try seconds(upstreamTimeout, "--upstream-timeout")
        configuration.connectTimeout = try seconds(connectTimeout, "--connect-timeout")
        // 0 turns the connection timeouts off.
        configuration.idleTimeout = idleTimeout == 0 ? nil : try seconds(idleTimeout, "--idle-timeout")
        configuration.headerTimeout = headerTimeout == 0 ? nil : try seconds(headerTimeout, "--header-timeout")
        configuration.shutdownGrace = try seconds(shutdownGrace, "--shutdown-grace", allowZero: true)
        guard upstreamConnections >= 1 else { throw ValidationError("--upstream-connections must be at least 1") }
        configuration.upstreamConnections = upstreamConnections
        configuration.environment = ProcessInfo.processInfo.environment
        if let mode {
            guard let parsed = RecordingMode(rawValue: mode) else {
                throw ValidationError(
                    "--mode \(mode) is not one of: \(RecordingMode.allCases.map(\.rawValue).joined(separator: ", "))"
                )
            }
            configuration.mode = parsed
        } else {
            do {
                configuration.mode = try RecordingMode.fromEnvironment(configuration.environment)
            } catch {
                throw ValidationError(error.description)
            }
        }
        guard let pace = ReplayPace(rawValue: pace) else { throw ValidationError("--pace must be none or recorded") }
        configuration.pace = pace
        let bases = try pairs(recordedBases, option: "--recorded-base")
        let keys = try pairs(upstreamKeys, option: "--upstream-key")
        let adapterKinds = try pairs(adapters, option: "--adapter")
        for (name, url) in try pairs(upstreams, option: "--upstream").sorted(by: { $0.key < $1.key }) {
            guard url.hasPrefix("http://") || url.hasPrefix("https://") else {
                throw ValidationError("--upstream \(name)=\(url): the URL must start with http:// or https://")
            }
            var adapter = AdapterKind.auto
            if let kind = adapterKinds[name] {
                guard let parsed = AdapterKind(rawValue: kind) else {
                    throw ValidationError(
                        "--adapter \(name)=\(kind): use one of \(AdapterKind.allCases.map(\.rawValue).joined(separator: ", "))"
                    )
                }
                adapter = parsed
            }
            configuration.routes.append(
                ProxyRoute(
                    name: name,
                    upstream: url,
                    recordedBase: bases[name],
                    keyEnvironmentVariable: keys[name],
                    adapter: adapter
                )
            )
        }
        for name in adapterKinds.keys where configuration.route(named: name) == nil {
            throw ValidationError("--adapter \(name)=...: there is no --upstream \(name)=URL")
        }
        for name in bases.keys where configuration.route(named: name) == nil {
            throw ValidationError("--recorded-base \(name)=...: there is no --upstream \(name)=URL")
        }
        for name in keys.keys where configuration.route(named: name) == nil {
            throw ValidationError("--upstream-key \(name)=...: there is no --upstream \(name)=URL")
        }
        return configuration
    }

    private func pairs(_ values: [String], option: String) throws -> [String: String] {
        var result: [String: String] = [:]
        for value in values {
            guard let equals = value.firstIndex(of: "="), equals != value.startIndex else {
                throw ValidationError("\(option) takes NAME=VALUE, not \(value)")
            }
            let name = String(value[..<equals])
            guard !name.contains("/"), result[name] == nil else {
                throw ValidationError("\(option): bad or repeated name \(name)")
            }
            result[name] = String(value[value.index(after: equals)...])
        }
        return result
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

/// Exits the process at the second SIGINT or SIGTERM: the first starts the graceful shutdown
/// (ServiceLifecycle handles it), a second means "now".
final class SecondSignalExit {
    private let sources: [any DispatchSourceSignal]

    init(logger: Logger) {
        let seen = Mutex(0)
        sources = [SIGINT, SIGTERM].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                let count = seen.withLock { count in
                    count += 1
                    return count
                }
                guard count >= 2 else { return }
                logger.warning("second signal: exiting without waiting for in-flight exchanges")
                exit(128 + number)
            }
            source.resume()
            return source
        }
    }

    func cancel() {
        for source in sources { source.cancel() }
    }
}
