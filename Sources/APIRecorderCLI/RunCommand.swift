import APIRecorder
import APIRecorderProxy
import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// `api-recorder run [serve flags] -- COMMAND [ARGS...]`: the proxy for the length of one command,
/// usually a test runner, whose clients find it through the variables their SDKs already read.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a command, a test runner say, with the proxy in front of its API calls.",
        discussion: """
            Starts the proxy on a free port with every provider preset (or those --provider names), \
            and runs COMMAND with API_RECORDER_URL, API_RECORDER_MODE, API_RECORDER_<ROUTE>_URL and \
            each SDK's base-URL variable (OPENAI_BASE_URL, ANTHROPIC_BASE_URL, OLLAMA_HOST, \
            GOOGLE_GEMINI_BASE_URL) pointing at it; SDK key variables that are unset get a \
            placeholder, which replays need none of and the proxy never forwards. When the command ends, the proxy stops gracefully, the session summary \
            goes to standard error, and run exits with the command's status; or with 1 when replay \
            mode missed a recording (unless --allow-misses) or a recording could not be saved. \
            SIGTERM, SIGHUP and SIGQUIT are passed on to the command, and SIGINT unless it came from \
            the terminal, which sends it to the command itself.
            """
    )

    @OptionGroup var options: ServeOptions

    @Flag(help: "Keep the command's exit status when replay mode missed recordings.")
    var allowMisses = false

    @Argument(parsing: .postTerminator, help: "The command to run and its arguments, after --.")
    var command: [String] = []

    @OptionGroup var global: GlobalOptions

    func validate() throws {
        guard !command.isEmpty else {
            throw ValidationError(
                "Give the command to run after --, as in: api-recorder run --provider openai -- pytest"
            )
        }
    }

    func run() async throws {
        let logger = global.makeLogger(label: "api-recorder.run")
        let configuration = try options.makeConfiguration(defaultPort: 0, allPresetsByDefault: true)
        let recorder = makeRecorder(configuration, logger: logger)
        let (ports, listening) = AsyncStream.makeStream(of: Int.self)
        let app = buildApplication(configuration, recorder: recorder, logger: logger) { port in
            listening.yield(port)
            listening.finish()
        }
        let commandService = CommandService(
            arguments: command,
            ports: ports,
            configuration: configuration,
            logger: logger
        )
        do {
            try await runUntilSignalled(
                app,
                grace: configuration.shutdownGrace,
                signals: [],
                alongside: [commandService],
                logger: logger
            )
        } catch {
            printError("api-recorder run: the proxy failed: \(error)")
            throw ExitCode(1)
        }
        let report = recorder.report()
        printError(Self.summary(of: report))
        guard let outcome = commandService.outcome else { throw ExitCode(1) }
        let status: Int32
        switch outcome {
        case .failure(let error):
            printError("api-recorder run: \(error)")
            status = error.status
        case .success(let commandStatus):
            status = exitStatus(command: commandStatus, report: report)
        }
        throw ExitCode(status)
    }

    /// The command's status, or 1 for a replay miss (unless `--allow-misses`) or a recording that
    /// could not be saved.
    private func exitStatus(command status: Int32, report: SessionReport) -> Int32 {
        if report.mode == .replay, report.misses > 0, !allowMisses {
            printError(
                "api-recorder run: exit status 1: \(report.misses) request\(report.misses == 1 ? "" : "s") had no "
                    + "recording (the command's status was \(status); --allow-misses keeps it)"
            )
            return 1
        }
        if !report.storeFailures.isEmpty {
            printError("api-recorder run: exit status 1: \(report.storeFailures.count) recordings could not be saved")
            return status == 0 ? 1 : status
        }
        return status
    }

    /// The session summary: the counts, then each miss (the first 20) with its diagnosis.
    static func summary(of report: SessionReport) -> String {
        var lines = ["api-recorder: " + report.summary]
        for miss in report.missedRequests.prefix(20) {
            var line =
                "api-recorder: missed \(miss.method) \(miss.url) (test id \(miss.testID ?? "none"), hash \(miss.hash))"
            line += ". " + (miss.diagnosis?.text ?? "No recording of that endpoint in the folders searched.")
            lines.append(line)
        }
        if report.misses > 20 {
            lines.append("api-recorder: and \(report.misses - 20) more misses (see --report-file)")
        }
        for failure in report.storeFailures.prefix(20) { lines.append("api-recorder: not saved: \(failure)") }
        return lines.joined(separator: "\n")
    }
}

/// The command of `run`, as a service beside the proxy: it starts once the proxy listens, and
/// when it ends the proxy shuts down gracefully.
final class CommandService: Service, Sendable {
    let arguments: [String]
    let ports: AsyncStream<Int>
    let configuration: ProxyConfiguration
    let logger: Logger
    private let result = Mutex<Result<Int32, ChildProcess.LaunchError>?>(nil)

    init(arguments: [String], ports: AsyncStream<Int>, configuration: ProxyConfiguration, logger: Logger) {
        self.arguments = arguments
        self.ports = ports
        self.configuration = configuration
        self.logger = logger
    }

    /// The command's exit status, or why it could not start; `nil` when it never ran.
    var outcome: Result<Int32, ChildProcess.LaunchError>? { result.withLock { $0 } }

    func run() async throws {
        var listening = ports.makeAsyncIterator()
        // No port: the proxy failed to start (or the group was cancelled), and its error is the story.
        guard let port = await listening.next() else { return }
        let url = "http://\(Self.clientHost(configuration.host)):\(port)"
        let environment = ClientEnvironment(proxyURL: url, configuration: configuration)
            .applied(to: ProcessInfo.processInfo.environment)
        logger.info("running", metadata: ["command": "\(arguments.joined(separator: " "))", "proxy": "\(url)"])
        let outcome = await ChildProcess(arguments: arguments, environment: environment, logger: logger).run()
        result.withLock { $0 = outcome }
    }

    /// The address clients use for a listening host: a wildcard address means this machine.
    static func clientHost(_ host: String) -> String {
        switch host {
        case "0.0.0.0", "": return "127.0.0.1"
        case "::", "[::]": return "[::1]"
        default: return host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
        }
    }
}
