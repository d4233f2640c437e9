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
            Point a client's base URL at http://HOST:PORT/NAME for each --upstream NAME=URL or \
            --provider NAME. Tests send their id in the X-Test-ID header (or set it with POST \
            /__recorder/test). The mode comes from --mode, else API_RECORDER_MODE, \
            OGX_TEST_INFERENCE_MODE or LLAMA_STACK_TEST_INFERENCE_MODE, else replay: nothing reaches \
            the network unless asked. SIGINT or SIGTERM stops the server after in-flight exchanges \
            (for at most --shutdown-grace seconds, after which they are cancelled and nothing partial is \
            written); a second signal exits at once.
            """
    )

    @OptionGroup var options: ServeOptions

    @Flag(
        help:
            "Stop gracefully when standard input closes: a test runner that starts the proxy with a pipe takes it down even when killed."
    )
    var untilStdinCloses = false

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let logger = global.makeLogger(label: "api-recorder.serve")
        let configuration = try options.makeConfiguration(defaultPort: 8555, allPresetsByDefault: false)
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
        try await runUntilSignalled(
            app,
            grace: configuration.shutdownGrace,
            alongside: untilStdinCloses ? [EndOfInputService()] : [],
            logger: logger
        )
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
