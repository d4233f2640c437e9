import APIRecorder
import APIRecorderProxy
import ArgumentParser
import Foundation
import Hummingbird
import Logging

/// `api-recorder serve`: the record/replay proxy.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the record/replay HTTP proxy.",
        discussion: """
            Point a client's base URL at http://HOST:PORT/NAME for each --upstream NAME=URL. Tests send \
            their id in the X-Test-ID header. The mode comes from --mode, else API_RECORDER_MODE, \
            OGX_TEST_INFERENCE_MODE or LLAMA_STACK_TEST_INFERENCE_MODE, else replay: nothing reaches \
            the network unless asked. SIGINT or SIGTERM stops the server after in-flight recordings.
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

    @Option(help: "The fallback folder for recordings without a test id (default: recordings under the root).")
    var fallbackDir = "recordings"

    @Option(name: .customLong("upstream"), help: "A route: NAME=URL forwards /NAME/rest to URL/rest. Repeatable.")
    var upstreams: [String] = []

    @Option(name: .customLong("recorded-base"), help: "NAME=URL: the base URL the route's recordings name (default: the upstream).")
    var recordedBases: [String] = []

    @Option(name: .customLong("upstream-key"), help: "NAME=ENV_VAR: send 'Authorization: Bearer $ENV_VAR' upstream for the route.")
    var upstreamKeys: [String] = []

    @Option(name: .customLong("adapter"), help: "NAME=auto|openai|ollama|http|mcp|gemini: the API rules for the route (default auto: /api/... as Ollama, ...:generateContent as Gemini, /messages and /interactions as plain HTTP, else OpenAI).")
    var adapters: [String] = []

    @Option(help: "Replay pacing of streams: none (as fast as possible) or recorded (the recorded gaps).")
    var pace = "none"

    @Option(help: "The largest request body accepted, in bytes.")
    var maxBody = 32 * 1024 * 1024

    @Option(help: "Seconds an upstream may take to answer.")
    var upstreamTimeout = 300

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let logger = global.makeLogger(label: "api-recorder.serve")
        let configuration = try makeConfiguration()
        let routes = configuration.routes.map { route in
            route.recordedBase == route.upstream ? "\(route.name)=\(route.upstream)"
                : "\(route.name)=\(route.upstream) (recorded as \(route.recordedBase))"
        }
        let app = buildApplication(configuration, logger: logger) { port in
            // One line, flushed at once: scripts wait for it to learn the port.
            let line =
                "api-recorder listening on http://\(configuration.host):\(port) mode=\(configuration.mode.rawValue) "
                + "root=\(configuration.root) routes=\(routes.isEmpty ? "none" : routes.joined(separator: ","))\n"
            FileHandle.standardOutput.write(Data(line.utf8))
        }
        try await app.runService()
    }

    func makeConfiguration() throws -> ProxyConfiguration {
        var configuration = ProxyConfiguration()
        configuration.host = host
        configuration.port = port
        configuration.root = absolute(root)
        configuration.fallbackDirectory = fallbackDir
        configuration.maxBodyBytes = maxBody
        configuration.upstreamTimeout = .seconds(upstreamTimeout)
        configuration.environment = ProcessInfo.processInfo.environment
        if let mode {
            guard let parsed = RecordingMode(rawValue: mode) else {
                throw ValidationError("--mode \(mode) is not one of: \(RecordingMode.allCases.map(\.rawValue).joined(separator: ", "))")
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
            var adapter = ProxyRoute.AdapterKind.auto
            if let kind = adapterKinds[name] {
                guard let parsed = ProxyRoute.AdapterKind(rawValue: kind) else {
                    throw ValidationError("--adapter \(name)=\(kind): use one of \(ProxyRoute.AdapterKind.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                adapter = parsed
            }
            configuration.routes.append(
                ProxyRoute(
                    name: name, upstream: url, recordedBase: bases[name], keyEnvironmentVariable: keys[name], adapter: adapter))
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
            guard !name.contains("/"), result[name] == nil else { throw ValidationError("\(option): bad or repeated name \(name)") }
            result[name] = String(value[value.index(after: equals)...])
        }
        return result
    }

    private func absolute(_ path: String) -> String {
        URL(fileURLWithPath: path, relativeTo: URL(fileURLWithPath: FileManager.default.currentDirectoryPath)).standardizedFileURL.path
    }
}
