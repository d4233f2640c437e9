import APIRecorder
import APIRecorderProxy
import Foundation
import Hummingbird
import NIOCore
import ServerTestSupport
import TestSupport
import Testing

/// Ollama's native API through the proxy, against an in-process Ollama-like upstream
/// (llama.cpp does not speak this API).
@Suite("Ollama routes", .timeLimit(.minutes(2)))
struct OllamaTests {
    static func upstream(onListening: @escaping @Sendable (Int) async -> Void) -> some ApplicationProtocol {
        let router = Router()
        router.post("/api/chat") { request, _ -> Response in
            let body = try JSONValue(parsing: Array(buffer: try await request.body.collect(upTo: 1 << 20)))
            let lines: [JSONValue] = ["Hel", "lo", ""].enumerated().map { index, text in
                [
                    "model": "llama3.2:3b", "created_at": .string("2026-11-28T10:00:0\(index).123Z"),
                    "message": ["role": "assistant", "content": .string(text)], "done": .bool(index == 2),
                    "total_duration": index == 2 ? JSONValue.integer(123_456) : JSONValue.null,
                ]
            }
            var headers = HTTPFields()
            if body["stream"]?.boolValue == false {
                headers[.contentType] = "application/json; charset=utf-8"
                return Response(
                    status: .ok,
                    headers: headers,
                    body: .init(byteBuffer: ByteBuffer(bytes: lines[2].compactBytes()))
                )
            }
            headers[.contentType] = "application/x-ndjson"
            return Response(
                status: .ok,
                headers: headers,
                body: ResponseBody { writer in
                    for line in lines { try await writer.write(ByteBuffer(bytes: line.compactBytes() + [0x0A])) }
                    try await writer.finish(nil)
                }
            )
        }
        router.get("/api/tags") { _, _ -> Response in
            FakeUpstream.json(["models": [["name": "llama3.2:3b", "model": "llama3.2:3b", "size": 1]]])
        }
        router.post("/api/show") { _, _ -> Response in
            FakeUpstream.json(["error": "model 'nope' not found"], status: .notFound)
        }
        return Application(
            router: router,
            configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { await onListening($0.localAddress?.port ?? 0) },
            logger: testLogger
        )
    }

    @Test func ndjsonStreamsAreRecordedTypedAndReplayedLineForLine() async throws {
        let directory = try TemporaryDirectory()
        let testID = "tests/ollama/test_chat.py::test_it"
        let body = json(["model": "llama3.2:3b", "messages": [["role": "user", "content": "hi"]]]).compactBytes()
        var live = ""
        var liveTags = ""
        try await withRunning(Self.upstream) { upstreamPort in
            try await withProxy(
                .test(mode: .record, root: directory.path, upstreamPort: upstreamPort).with {
                    $0.routes = [
                        ProxyRoute(
                            name: "ollama",
                            upstream: "http://127.0.0.1:\(upstreamPort)",
                            recordedBase: "http://localhost:11434"
                        )
                    ]
                }
            ) { port in
                let client = TestClient(port: port)
                let reply = try await client.send(
                    .post,
                    "/ollama/api/chat",
                    body: body,
                    headers: [("X-Test-ID", testID)]
                )
                #expect(reply.contentType == "application/x-ndjson")
                live = reply.text
                liveTags = try await client.send(.get, "/ollama/api/tags", headers: [("X-Test-ID", testID)]).text
                let missing = try await client.send(
                    .post,
                    "/ollama/api/show",
                    body: json(["model": "nope"]).compactBytes()
                )
                #expect(missing.status == 404)
            }
        }
        let lines = live.split(separator: "\n")
        #expect(lines.count == 3)
        #expect(lines.allSatisfy { $0.contains(#""created_at":"1970-01-01T00:00:00.000000Z""#) })
        #expect(lines[2].contains(#""total_duration":0"#))

        let chat = try #require(
            directory.files().first { $0.hasPrefix("tests/ollama/recordings/") && !$0.contains("models-") }
        )
        let recording = try Recording(contentsOfFile: "\(directory.path)/\(chat)")
        #expect(recording.method == "POST")
        #expect(recording.url == "http://localhost:11434/api/chat")
        #expect(recording.chunks?.first?["__type__"] == "ollama._types.ChatResponse")
        #expect(directory.files().contains { $0.hasPrefix("tests/ollama/recordings/models-") })
        for file in directory.files() {
            #expect(RecordingVerifier.verify(path: "\(directory.path)/\(file)").isOK, "\(file)")
        }

        try await withProxy(
            .test(mode: .replay, root: directory.path, upstreamPort: nil).with {
                $0.routes = [
                    ProxyRoute(name: "ollama", upstream: "http://127.0.0.1:9", recordedBase: "http://localhost:11434")
                ]
            }
        ) { port in
            let client = TestClient(port: port)
            let replay = try await client.send(.post, "/ollama/api/chat", body: body, headers: [("X-Test-ID", testID)])
            #expect(replay.text == live)
            // Another test of the same file shares the list (the hash has no test id).
            let tags = try await client.send(
                .get,
                "/ollama/api/tags",
                headers: [("X-Test-ID", "tests/ollama/test_chat.py::another")]
            )
            #expect(tags.json == (try JSONValue(parsing: liveTags)))
            let missing = try await client.send(.post, "/ollama/api/show", body: json(["model": "nope"]).compactBytes())
            #expect(missing.status == 404)
            #expect(missing.json?["error"] == "model 'nope' not found")
        }
    }

    @Test(.enabled(if: Shared.isAvailable, Shared.skipMessage))
    func theReferencesProcessListReplays() async throws {
        let root = Shared.root.appendingPathComponent("corpus-sample").path
        try await withProxy(
            .test(mode: .replay, root: root, upstreamPort: nil).with {
                $0.fallbackDirectory = "tests/integration/common/recordings"
                $0.routes = [
                    ProxyRoute(name: "ollama", upstream: "http://127.0.0.1:9", recordedBase: "http://localhost:11434")
                ]
            }
        ) { port in
            let reply = try await TestClient(port: port).send(.post, "/ollama/api/ps", body: Array("{}".utf8))
            #expect(reply.status == 200)
            #expect(reply.json == ["models": []])
        }
    }
}
