import APIRecorder
import APIRecorderProxy
import Foundation
import Hummingbird
import NIOCore
import ServerTestSupport
import Synchronization
import TestSupport
import Testing

/// Plain-HTTP recordings through the proxy: HTTP tools, Anthropic Messages, Gemini interactions.
@Suite("Plain-HTTP routes", .timeLimit(.minutes(2)))
struct PlainHTTPTests {
    /// A Tavily-like search API that remembers the key it was sent.
    final class SearchUpstream: Sendable {
        let keys = Mutex<[String]>([])

        func application(onListening: @escaping @Sendable (Int) async -> Void) -> some ApplicationProtocol {
            let router = Router()
            router.post("/search") { request, _ -> Response in
                let body = try JSONValue(parsing: Array(buffer: try await request.body.collect(upTo: 1 << 20)))
                self.keys.withLock { $0.append(body["api_key"]?.stringValue ?? "none") }
                return FakeUpstream.json([
                    "query": body["query"] ?? nil, "results": [["url": "https://example.org", "score": 0.9]],
                ])
            }
            return Application(
                router: router,
                configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                onServerRunning: { await onListening($0.localAddress?.port ?? 0) },
                logger: testLogger
            )
        }
    }

    @Test func httpToolsAreRecordedWithoutTheirKeysAndReplayed() async throws {
        let directory = try TemporaryDirectory()
        let upstream = SearchUpstream()
        let secret = "tvly-\(UUID().uuidString)"
        let testID = "tests/tools/test_search.py::test_it"
        try await withRunning(upstream.application) { upstreamPort in
            try await withProxy(
                .test(mode: .recordIfMissing, root: directory.path, upstreamPort: upstreamPort).with {
                    $0.routes = [
                        ProxyRoute(
                            name: "tavily",
                            upstream: "http://127.0.0.1:\(upstreamPort)",
                            recordedBase: "https://api.tavily.com",
                            keyEnvironmentVariable: "TAVILY_KEY",
                            adapter: .http
                        )
                    ]
                    $0.environment = ["TAVILY_KEY": "real-key"]
                }
            ) { port in
                for clientKey in [secret, "another-dummy-key"] {
                    let reply = try await TestClient(port: port).send(
                        .post,
                        "/tavily/search?key=\(secret)",
                        body: json(["query": "Paris weather", "api_key": .string(clientKey)]).compactBytes(),
                        headers: [("X-Test-ID", testID)]
                    )
                    #expect(reply.status == 200)
                    #expect(reply.json?["results"]?.arrayValue?.count == 1)
                }
            }
        }
        // The key never changes the identity: the second call replayed the first's recording.
        #expect(upstream.keys.withLock { $0 } == ["real-key"])
        let files = directory.files()
        try #require(files.count == 1)
        let text = String(decoding: try readBytes("\(directory.path)/\(files[0])"), as: UTF8.self)
        #expect(!text.contains(secret))
        let recording = try Recording(contentsOfFile: "\(directory.path)/\(files[0])")
        #expect(recording.kind == .http)
        #expect(recording.url == "https://api.tavily.com/search")
        #expect(recording.request["payload"] == ["query": "Paris weather"])
        #expect(recording.status == 200)
        #expect(RecordingVerifier.verify(path: "\(directory.path)/\(files[0])").isOK)
    }

    @Test(.enabled(if: Shared.isAvailable, Shared.skipMessage))
    func theReferencesMessagesAndInteractionsRecordingsReplayByteForByte() async throws {
        let root = Shared.root.appendingPathComponent("corpus-sample").path
        let recordings = RecordingVerifier.recordingFiles(in: [root]).compactMap { try? Recording(contentsOfFile: $0) }
            .filter { $0.kind == .http }
        #expect(recordings.count == 8)
        try await withProxy(
            .test(mode: .replay, root: root, upstreamPort: nil).with {
                $0.fallbackDirectory = "tests/integration/common/recordings"
                $0.routes = [
                    ProxyRoute(
                        name: "ollama",
                        upstream: "http://127.0.0.1:9/v1",
                        recordedBase: "http://0.0.0.0:11434/v1"
                    ),
                    ProxyRoute(
                        name: "gemini",
                        upstream: "http://127.0.0.1:9/v1beta",
                        recordedBase: "https://generativelanguage.googleapis.com/v1beta"
                    ),
                ]
            }
        ) { port in
            for recording in recordings {
                let route = recording.url!.contains("googleapis") ? "gemini/interactions" : "ollama/messages"
                let reply = try await TestClient(port: port).send(
                    .post,
                    "/\(route)",
                    body: recording.request["payload"]!.compactBytes(),
                    headers: [("X-Test-ID", recording.testID!)]
                )
                if let lines = recording.chunks {
                    #expect(reply.status == 200)
                    #expect(reply.contentType == "text/event-stream")
                    let expected = lines.compactMap(\.stringValue).joined(separator: "\n") + "\n"
                    #expect(reply.text == expected)
                } else {
                    #expect(reply.status == recording.status)
                    #expect(reply.json == recording.body)
                }
            }
        }
    }
}
