import APIRecorder
import APIRecorderProxy
import APIRecorderUpstream
import ArgumentParser
import Foundation

/// `api-recorder drift [PATH...] --upstream NAME=URL ...`: are the recordings still what the live
/// APIs answer, in shape?
struct DriftCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drift",
        abstract: "Re-send recorded requests to the live upstreams and compare the shape of each answer.",
        discussion: """
            For each recording under the paths (default: the current folder), sends its request \
            again through the route whose recorded base its URL starts with (the same route flags \
            as serve, so the same recordings map to the same routes), and compares the shape of \
            the answer with the recording's: the status, keys added or removed (by JSON path, list \
            items merged), value types that changed, and a stream's event types in order. Values \
            are not compared. Writes nothing. One line per recording, then a summary; exits 1 when \
            a recording drifted or could not be checked.
            """
    )

    @Argument(help: "Recording files or folders (default: the current folder).")
    var paths: [String] = []

    @OptionGroup var routing: RouteOptions

    @Option(name: .customLong("test-id"), help: "Only the recordings whose test id starts with this.")
    var testIDPrefix: String?

    @Option(help: "Seconds an upstream may take to answer one request.")
    var timeout: Double = 120

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        _ = global.makeLogger(label: "api-recorder.drift")
        let environment = ProcessInfo.processInfo.environment
        let routes = try routing.routes(environment: environment, allPresetsByDefault: false)
        if routes.isEmpty { throw ValidationError("give the routes: --upstream NAME=URL or --provider NAME") }
        guard timeout.isFinite, timeout > 0 else { throw ValidationError("--timeout takes seconds above 0") }
        let transport = HTTPClientTransport(
            configuration: .init(connections: 4, connectTimeout: .seconds(3), readTimeout: .seconds(timeout))
        )
        let check = DriftCheck(
            routes: routes.map { Self.driftRoute($0, environment: environment) },
            transport: transport,
            timeout: .milliseconds(Int64(timeout * 1000))
        )
        var counts = (same: 0, drifted: 0, failed: 0, skipped: 0)
        for file in RecordingVerifier.recordingFiles(in: paths.isEmpty ? ["."] : paths).sorted() {
            let recording: Recording
            do {
                recording = try Recording(contentsOfFile: file)
            } catch {
                print("\(file): failed: \(error)")
                counts.failed += 1
                continue
            }
            if let testIDPrefix, !(recording.testID ?? "").hasPrefix(testIDPrefix) { continue }
            switch await check.check(recording) {
            case .same:
                print("\(file): same shape")
                counts.same += 1
            case .drifted(let drift):
                print("\(file): drifted: \(drift.description)")
                counts.drifted += 1
            case .failed(let reason):
                print("\(file): failed: \(reason)")
                counts.failed += 1
            case .skipped:
                counts.skipped += 1
            }
        }
        try? await transport.shutdown()
        let total = counts.same + counts.drifted + counts.failed
        var summary = "\(total) recordings: \(counts.same) same, \(counts.drifted) drifted, \(counts.failed) failed"
        if counts.skipped > 0 { summary += "; \(counts.skipped) tool invocations skipped" }
        print(summary)
        if counts.drifted + counts.failed > 0 { throw ExitCode.failure }
    }

    /// A proxy route as drift sends through it: its key in the headers its provider reads.
    private static func driftRoute(_ route: ProxyRoute, environment: [String: String]) -> DriftCheck.Route {
        var headers: [(name: String, value: String)] = []
        if let variable = route.keyEnvironmentVariable, let key = environment[variable], !key.isEmpty {
            switch route.preset?.name {
            case "anthropic": headers.append(("x-api-key", key))
            case "gemini": headers.append(("x-goog-api-key", key))
            default: headers.append(("Authorization", "Bearer \(key)"))
            }
        }
        return DriftCheck.Route(
            name: route.name,
            recordedBase: route.recordedBase,
            upstream: route.upstream,
            headers: headers
        )
    }
}
