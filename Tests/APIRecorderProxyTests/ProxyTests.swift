import APIRecorder
import APIRecorderProxy
import AsyncHTTPClient
import Foundation
import HTTPTypes
import NIOCore
import NIOHTTP1
import ServerTestSupport
import Synchronization
import TestSupport
import Testing

/// The proxy against an in-process upstream: record, replay with the upstream stopped, errors,
/// streaming, concurrency. (The official SDKs and a real model server are exercised by the
/// Python suite.)
@Suite("The record/replay proxy", .timeLimit(.minutes(2)))
struct ProxyTests {
    private func recordings(_ directory: TemporaryDirectory) -> [String] {
        directory.files().filter { $0.hasSuffix(".json") }
    }

    @Test func recordsThenReplaysWithTheUpstreamStopped() async throws {
        let directory = try TemporaryDirectory()
        let upstream = FakeUpstream()
        var recorded: TestClient.Reply?
        try await withRunning(upstream.application) { upstreamPort in
            try await withProxy(mode: .recordIfMissing, root: directory.path, upstreamPort: upstreamPort) { port in
                recorded = try await TestClient(port: port).chat("hello")
            }
        }
        let live = try #require(recorded)
        #expect(live.status == 200)
        #expect(live.json?["choices"]?.arrayValue?.first?["message"]?["content"] == "echo: hello")
        #expect(recordings(directory).count == 1)
        #expect(recordings(directory).first?.hasPrefix("tests/proxy/recordings/") == true)
        let report = RecordingVerifier.verify(path: "\(directory.path)/\(recordings(directory)[0])")
        #expect(report.isOK)
        #expect(report.recording?.response["body"]?["__type__"] == "openai.types.chat.chat_completion.ChatCompletion")

        // The upstream is gone; replay answers alone.
        try await withProxy(mode: .replay, root: directory.path, upstreamPort: nil) { port in
            let replayed = try await TestClient(port: port).chat("hello")
            #expect(replayed.status == 200)
            #expect(replayed.json?["choices"] == live.json?["choices"])
            #expect(replayed.json?["id"]?.stringValue?.hasPrefix("rec-") == true)
            #expect(replayed.json?["created"] == 0)
        }
        #expect(upstream.calls.load(ordering: .relaxed) == 1)
    }

    @Test func streamsAreTeedChunkByChunkAndReplayedWithTheSameEvents() async throws {
        let directory = try TemporaryDirectory()
        let upstream = FakeUpstream()
        upstream.streamGate.close()
        try await withRunning(upstream.application) { upstreamPort in
            try await withProxy(mode: .record, root: directory.path, upstreamPort: upstreamPort) { port in
                // Read the stream by hand: the first chunks must arrive while the upstream still holds the last.
                var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/up/chat/completions")
                request.method = .POST
                request.headers.add(name: "X-Test-ID", value: "tests/proxy/test_stream.py::test_it")
                request.body = .bytes(
                    ByteBuffer(
                        bytes: json([
                            "model": "test-model", "messages": [["role": "user", "content": "count"]], "stream": true,
                        ]).compactBytes()
                    )
                )
                let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
                #expect(response.headers.first(name: "content-type") == "text/event-stream")
                var received: [UInt8] = []
                var iterator = response.body.makeAsyncIterator()
                while !String(decoding: received, as: UTF8.self).contains("two ") {
                    guard var buffer = try await iterator.next() else { break }
                    received += buffer.readBytes(length: buffer.readableBytes) ?? []
                }
                #expect(String(decoding: received, as: UTF8.self).contains("one "))
                #expect(self.recordings(directory).isEmpty, "the recording is written only when the stream completes")
                upstream.streamGate.open()
                while var buffer = try await iterator.next() {
                    received += buffer.readBytes(length: buffer.readableBytes) ?? []
                }
                let text = String(decoding: received, as: UTF8.self)
                #expect(text.hasSuffix("data: [DONE]\n\n"))
            }
        }
        let files = recordings(directory)
        try #require(files.count == 1)
        let recording = try Recording(contentsOfFile: "\(directory.path)/\(files[0])")
        #expect(recording.chunks?.count == 3)
        #expect(recording.response["chunk_offsets_ms"]?.arrayValue?.count == 3)
        #expect(Transcript(recording).text == "one two three (count)")
        #expect(RecordingVerifier.verify(path: "\(directory.path)/\(files[0])").isOK)

        try await withProxy(mode: .replay, root: directory.path, upstreamPort: nil) { port in
            let replay = try await TestClient(port: port).send(
                .post,
                "/up/chat/completions",
                body: json(["model": "test-model", "messages": [["role": "user", "content": "count"]], "stream": true])
                    .compactBytes(),
                headers: [("X-Test-ID", "tests/proxy/test_stream.py::test_it")]
            )
            let events = replay.text.components(separatedBy: "\n\n").filter { !$0.isEmpty }
            #expect(events.count == 4)
            #expect(events.last == "data: [DONE]")
            #expect(events.first?.hasPrefix("data: {") == true)
        }
    }

    @Test func recordedPacingReplaysTheGaps() async throws {
        let directory = try TemporaryDirectory()
        let body: JSONValue = ["model": "m", "messages": [["role": "user", "content": "paced"]], "stream": true]
        let chunk: (String) -> JSONValue = { text in
            ResponseNormalization.typed(
                "openai.types.chat.chat_completion_chunk.ChatCompletionChunk",
                data: [
                    "id": "x", "object": "chat.completion.chunk", "created": 1,
                    "choices": [["index": 0, "delta": ["content": .string(text)]]],
                ],
                requestHash: "0"
            )
        }
        let recording = Recording.inference(
            testID: nil,
            method: "POST",
            url: "http://127.0.0.1:9/v1/chat/completions",
            body: body,
            endpoint: "/v1/chat/completions",
            model: "m",
            outcome: .stream([chunk("a"), chunk("b")]),
            extraResponseKeys: ["chunk_offsets_ms": [0, 1500]]
        )
        try RecordingStore(root: directory.path).save(recording)
        // A long gap keeps the two cases apart even on a loaded machine.
        for (pace, atLeast) in [(ReplayPace.none, 0.0), (.recorded, 1.45)] {
            try await withProxy(mode: .replay, root: directory.path, upstreamPort: nil, pace: pace) { port in
                let started = Date()
                let reply = try await TestClient(port: port).send(
                    .post,
                    "/up/chat/completions",
                    body: body.compactBytes()
                )
                let elapsed = Date().timeIntervalSince(started)
                #expect(reply.status == 200)
                #expect(elapsed >= atLeast)
                if pace == .none { #expect(elapsed < 1.0) }
            }
        }
    }

    @Test func errorStatusesAreRecordedAsExceptionsAndReplayed() async throws {
        let directory = try TemporaryDirectory()
        let upstream = FakeUpstream()
        try await withRunning(upstream.application) { upstreamPort in
            try await withProxy(mode: .record, root: directory.path, upstreamPort: upstreamPort) { port in
                let reply = try await TestClient(port: port).chat("rate limit")
                #expect(reply.status == 429)
            }
        }
        let files = recordings(directory)
        try #require(files.count == 1)
        let recording = try Recording(contentsOfFile: "\(directory.path)/\(files[0])")
        let exception = try #require(recording.exception)
        #expect(exception.type == "RateLimitError")
        #expect(exception.category == "provider_sdk")
        #expect(exception.statusCode == 429)
        #expect(exception.body?["code"] == "rate_limit_exceeded")
        #expect(exception.message?.hasPrefix("Error code: 429 - {'error': {'message': 'Rate limit reached'") == true)
        try await withProxy(mode: .replay, root: directory.path, upstreamPort: nil) { port in
            let reply = try await TestClient(port: port).chat("rate limit")
            #expect(reply.status == 429)
            #expect(reply.json?["error"]?["code"] == "rate_limit_exceeded")
        }
    }

    @Test func aMidStreamFailureIsRecordedAndFailsTheSameWayOnReplay() async throws {
        let directory = try TemporaryDirectory()
        let upstream = FakeUpstream()
        try await withRunning(upstream.application) { upstreamPort in
            try await withProxy(mode: .record, root: directory.path, upstreamPort: upstreamPort) { port in
                await #expect(throws: (any Error).self) {
                    _ = try await TestClient(port: port).chat("fail midway", stream: true)
                }
            }
        }
        let files = recordings(directory)
        try #require(files.count == 1)
        let recording = try Recording(contentsOfFile: "\(directory.path)/\(files[0])")
        #expect(recording.isException)
        #expect(recording.chunks?.count == 2)
        try await withProxy(mode: .replay, root: directory.path, upstreamPort: nil) { port in
            var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/up/chat/completions")
            request.method = .POST
            request.headers.add(name: "X-Test-ID", value: "tests/proxy/test_chat.py::test_it")
            request.body = .bytes(
                ByteBuffer(
                    bytes: json([
                        "model": "test-model", "messages": [["role": "user", "content": "fail midway"]], "stream": true,
                    ]).compactBytes()
                )
            )
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
            var received = ""
            await #expect(throws: (any Error).self) {
                for try await buffer in response.body { received += String(buffer: buffer) }
            }
            #expect(received.contains("one ") && received.contains("two "))
            #expect(!received.contains("[DONE]"))
        }
    }

    @Test func unreachableAndSlowUpstreamsGive502And504AndRecordNothing() async throws {
        let directory = try TemporaryDirectory()
        try await withProxy(mode: .record, root: directory.path, upstreamPort: 9) { port in
            let reply = try await TestClient(port: port).chat("hello")
            #expect(reply.status == 502)
            #expect(reply.json?["error"]?["type"] == "upstream_unreachable")
            #expect(reply.json?["error"]?["message"]?.stringValue?.contains("http://127.0.0.1:9/v1") == true)
        }
        let upstream = FakeUpstream()
        try await withRunning(upstream.application) { upstreamPort in
            try await withProxy(
                .test(mode: .record, root: directory.path, upstreamPort: upstreamPort).with {
                    $0.upstreamTimeout = .seconds(1)
                }
            ) { port in
                let reply = try await TestClient(port: port).chat("slow")
                #expect(reply.status == 504)
                #expect(reply.json?["error"]?["type"] == "upstream_timeout")
            }
        }
        #expect(recordings(directory).isEmpty)
    }

    @Test func aMissIsANonRetryable404NamingEverything() async throws {
        let directory = try TemporaryDirectory()
        try await withProxy(mode: .replay, root: directory.path, upstreamPort: nil) { port in
            let reply = try await TestClient(port: port).chat("never recorded")
            #expect(reply.status == 404)
            let error = try #require(reply.json?["error"])
            #expect(error["type"] == "recording_not_found")
            let message = try #require(error["message"]?.stringValue)
            for part in [
                "hash ", "tests/proxy/test_chat.py::test_it", "POST http://127.0.0.1:9/v1/chat/completions",
                "model: test-model", "\(directory.path)/tests/proxy/recordings", "record-if-missing",
            ] {
                #expect(message.contains(part), "\(part) missing from: \(message)")
            }
            // Still serving.
            #expect(try await TestClient(port: port).chat("again").status == 404)
        }
    }

    @Test func badRequestsGetClearErrorsAndWriteNothing() async throws {
        let directory = try TemporaryDirectory()
        try await withProxy(
            .test(mode: .recordIfMissing, root: directory.path, upstreamPort: 9).with { $0.maxBodyBytes = 1000 }
        ) { port in
            let client = TestClient(port: port)
            let malformed = try await client.send(.post, "/up/chat/completions", body: Array(#"{"model": "#.utf8))
            #expect(malformed.status == 400)
            #expect(malformed.json?["error"]?["message"]?.stringValue?.contains("not valid JSON") == true)
            let invalidUTF8 = try await client.send(
                .post,
                "/up/chat/completions",
                body: Array(#"{"model": ""#.utf8) + [0xFF, 0x22, 0x7D]
            )
            #expect(invalidUTF8.status == 400)
            #expect(invalidUTF8.json?["error"]?["message"]?.stringValue?.contains("invalid UTF-8") == true)
            let large = try await client.send(.post, "/up/chat/completions", body: Array(repeating: 0x20, count: 5000))
            #expect(large.status == 413)
            let escape = try await client.chat("hi", testID: "../../etc/test_x.py::t")
            #expect(escape.status == 400)
            #expect(escape.json?["error"]?["type"] == "invalid_test_id")
            let noRoute = try await client.send(.get, "/nowhere/v1/models")
            #expect(noRoute.status == 404)
            #expect(noRoute.json?["error"]?["message"]?.stringValue?.contains("/up") == true)
        }
        #expect(directory.files().isEmpty)
    }

    @Test func identicalConcurrentRequestsShareOneUpstreamCall() async throws {
        let directory = try TemporaryDirectory()
        let upstream = FakeUpstream()
        upstream.streamGate.close()
        try await withRunning(upstream.application) { upstreamPort in
            try await withProxy(mode: .recordIfMissing, root: directory.path, upstreamPort: upstreamPort) { port in
                let replies = try await withThrowingTaskGroup(of: String.self) { group in
                    for _ in 0..<64 {
                        group.addTask { try await TestClient(port: port).chat("together", stream: true).text }
                    }
                    try await Task.sleep(for: .milliseconds(300))
                    upstream.streamGate.open()
                    return try await group.reduce(into: [String]()) { $0.append($1) }
                }
                #expect(replies.count == 64)
                // The leader's client saw the live stream; the others the replay of its recording:
                // the same events.
                let contents = Set(
                    replies.map { reply in
                        reply.components(separatedBy: "\n\n").filter { !$0.isEmpty }.map { event -> String in
                            guard event.hasPrefix("data: {"),
                                let data = try? JSONValue(parsing: String(event.dropFirst(6)))
                            else {
                                return event
                            }
                            return data["choices"]?.arrayValue?.first?["delta"]?["content"]?.stringValue ?? ""
                        }
                    }
                )
                #expect(contents.count == 1, "\(contents)")
            }
        }
        #expect(upstream.calls.load(ordering: .relaxed) == 1)
        #expect(recordings(directory).count == 1)
    }

    @Test func liveModePassesThroughAndCountsOnce() async throws {
        let directory = try TemporaryDirectory()
        let upstream = FakeUpstream()
        try await withRunning(upstream.application) { upstreamPort in
            try await withProxy(mode: .live, root: directory.path, upstreamPort: upstreamPort) { port in
                let reply = try await TestClient(port: port).chat("live")
                #expect(reply.json?["choices"]?.arrayValue?.first?["message"]?["content"] == "echo: live")
                #expect(reply.json?["id"]?.stringValue?.hasPrefix("chatcmpl-") == true, "live answers are untouched")
                let report = try await TestClient(port: port).send(.get, "/__recorder/report")
                #expect(report.json?["passed_through"] == 1)
                #expect(report.json?["recorded"] == 0)
            }
        }
        #expect(directory.files().isEmpty)
    }

    @Test func testIDsComeFromHeadersProviderDataOrTheControlEndpoint() async throws {
        let directory = try TemporaryDirectory()
        let upstream = FakeUpstream()
        try await withRunning(upstream.application) { upstreamPort in
            try await withProxy(mode: .record, root: directory.path, upstreamPort: upstreamPort) { port in
                let client = TestClient(port: port)
                let body = json(["model": "m", "messages": [["role": "user", "content": "id"]]]).compactBytes()
                _ = try await client.send(
                    .post,
                    "/up/chat/completions",
                    body: body,
                    headers: [("x-test-id", "a/test_one.py::t")]
                )
                _ = try await client.send(
                    .post,
                    "/up/chat/completions",
                    body: body,
                    headers: [("X-OGX-Provider-Data", #"{"__test_id": "b/test_two.py::t"}"#)]
                )
                _ = try await client.send(
                    .post,
                    "/up/chat/completions",
                    body: body,
                    headers: [("X-LlamaStack-Provider-Data", #"{"__test_id": "c/test_three.py::t"}"#)]
                )
                let set = try await client.send(
                    .post,
                    "/__recorder/test",
                    body: Array(#"{"test_id": "d/test_four.py::t"}"#.utf8)
                )
                #expect(set.status == 200)
                _ = try await client.send(.post, "/up/chat/completions", body: body)
                // A header wins over the current id.
                _ = try await client.send(
                    .post,
                    "/up/chat/completions",
                    body: body,
                    headers: [("X-Test-Id", "e/test_five.py::t")]
                )
                _ = try await client.send(.post, "/__recorder/test", body: Array(#"{"test_id": null}"#.utf8))
                _ = try await client.send(.post, "/up/chat/completions", body: body)
                let report = try await client.send(.get, "/__recorder/report")
                #expect(report.json?["recorded"] == 6)
            }
        }
        let folders = Set(recordings(directory).map { ($0 as NSString).deletingLastPathComponent })
        #expect(
            folders == ["a/recordings", "b/recordings", "c/recordings", "d/recordings", "e/recordings", "recordings"]
        )
    }

    @Test func toolCallIDsAreDeterministicSoReRecordingsAreIdentical() async throws {
        let directory = try TemporaryDirectory()
        let upstream = FakeUpstream()
        var files: [[UInt8]] = []
        var clientIDs: [String] = []
        for _ in 0..<2 {
            try await withRunning(upstream.application) { upstreamPort in
                // The upstream's port changes between runs; the recorded base keeps the identity stable.
                try await withProxy(
                    .test(mode: .record, root: directory.path, upstreamPort: upstreamPort).with {
                        $0.routes[0].recordedBase = "http://upstream.test/v1"
                    }
                ) { port in
                    let reply = try await TestClient(port: port).chat("call a tool")
                    let call = reply.json?["choices"]?.arrayValue?.first?["message"]?["tool_calls"]?.arrayValue?.first
                    clientIDs.append(call?["id"]?.stringValue ?? "")
                }
            }
            files.append(try readBytes("\(directory.path)/\(recordings(directory)[0])"))
        }
        #expect(clientIDs[0] == clientIDs[1])
        #expect(clientIDs[0].hasPrefix("call_") && clientIDs[0].count == 29)
        #expect(
            Bool(files[0] == files[1]),
            "re-recording differs:\n\(String(decoding: files[0], as: UTF8.self))\n---\n\(String(decoding: files[1], as: UTF8.self))"
        )
        let recording = try Recording(parsing: files[0])
        #expect(clientIDs[0] == DeterministicToolCallIDs.id(requestHash: recording.hash, choice: 0, toolCall: 0))
    }

    @Test func otherEndpointsKeepTheirQueryStringInTheIdentity() async throws {
        let directory = try TemporaryDirectory()
        let upstream = FakeUpstream()
        try await withRunning(upstream.application) { upstreamPort in
            try await withProxy(mode: .record, root: directory.path, upstreamPort: upstreamPort) { port in
                let first = try await TestClient(port: port).send(.get, "/up/items?page=1")
                let second = try await TestClient(port: port).send(.get, "/up/items?page=2")
                #expect(first.json?["page"] == "1")
                #expect(second.json?["page"] == "2")
            }
        }
        #expect(recordings(directory).count == 2)
        try await withProxy(mode: .replay, root: directory.path, upstreamPort: nil) { port in
            let second = try await TestClient(port: port).send(.get, "/up/items?page=2")
            let first = try await TestClient(port: port).send(.get, "/up/items?page=1")
            let third = try await TestClient(port: port).send(.get, "/up/items?page=3")
            #expect(second.json?["page"] == "2")
            #expect(first.json?["page"] == "1")
            #expect(third.status == 404)
        }
    }

    @Test func modelListsAreSharedAcrossTestsAndUseTheModelsFileName() async throws {
        let directory = try TemporaryDirectory()
        let upstream = FakeUpstream()
        try await withRunning(upstream.application) { upstreamPort in
            try await withProxy(mode: .record, root: directory.path, upstreamPort: upstreamPort) { port in
                let reply = try await TestClient(port: port).send(
                    .get,
                    "/up/models",
                    headers: [("X-Test-ID", "x/test_a.py::t")]
                )
                #expect(reply.json?["data"]?.arrayValue?.count == 1)
            }
        }
        let files = recordings(directory)
        #expect(files.count == 1)
        #expect(files.first?.hasPrefix("x/recordings/models-") == true)
        try await withProxy(mode: .replay, root: directory.path, upstreamPort: nil) { port in
            let reply = try await TestClient(port: port).send(
                .get,
                "/up/models",
                headers: [("X-Test-ID", "x/test_b.py::t")]
            )
            #expect(reply.status == 200)
            #expect(reply.json?["object"] == "list")
            #expect(reply.json?["data"]?.arrayValue?.first?["id"] == "test-model")
        }
    }

    @Test func secretsInHeadersNeverReachARecordingAndKeysCanBeInjected() async throws {
        let directory = try TemporaryDirectory()
        let upstream = FakeUpstream()
        let secret = "sk-secret-\(UUID().uuidString)"
        try await withRunning(upstream.application) { upstreamPort in
            try await withProxy(
                .test(mode: .record, root: directory.path, upstreamPort: upstreamPort).with {
                    $0.routes[0].keyEnvironmentVariable = "UPSTREAM_KEY"
                    $0.environment = ["UPSTREAM_KEY": "real-key"]
                }
            ) { port in
                let body = json([
                    "model": "m", "messages": [["role": "user", "content": "hi"]], "api_key": .string(secret),
                ])
                .compactBytes()
                _ = try await TestClient(port: port).send(
                    .post,
                    "/up/chat/completions?key=\(secret)",
                    body: body,
                    headers: [
                        ("Authorization", "Bearer \(secret)"), ("X-Api-Key", secret), ("Api-Key", secret),
                        ("X-Goog-Api-Key", secret), ("Anthropic-Api-Key", secret), ("Cookie", "s=\(secret)"),
                    ]
                )
            }
        }
        // The real key replaced the client's everywhere the client put one.
        #expect(upstream.lastAuthorization.withLock { $0 } == "Bearer real-key")
        #expect(upstream.lastKeyHeaders.withLock { $0 } == ["real-key", "real-key", "real-key"])
        #expect(upstream.lastQuery.withLock { $0 } == "key=real-key")
        for file in recordings(directory) {
            #expect(!String(decoding: try readBytes("\(directory.path)/\(file)"), as: UTF8.self).contains(secret))
        }
    }

    @Test(.enabled(if: Shared.isAvailable, Shared.skipMessage))
    func theSeedReplaysUnchangedWithARecordedBase() async throws {
        let root = Shared.root.appendingPathComponent("fixtures/seed").path
        try await withProxy(
            .test(mode: .replay, root: root, upstreamPort: nil).with {
                $0.routes = [
                    ProxyRoute(
                        name: "openai",
                        upstream: "https://api.openai.com/v1",
                        recordedBase: "https://api.openai.com/v1/v1"
                    )
                ]
                $0.fallbackDirectory = "tests/integration/common/recordings"
            }
        ) { port in
            let seed = try Recording(
                contentsOfFile:
                    "\(root)/tests/integration/responses/recordings/aa152c7d111f58cc0fe23fc14264ffc74e4938b686527481b55a207e1d20cb90.json"
            )
            let reply = try await TestClient(port: port).send(
                .post,
                "/openai/chat/completions",
                body: seed.request["body"]!.compactBytes(),
                headers: [("X-Test-ID", seed.testID!)]
            )
            #expect(reply.status == 200)
            let chunks = reply.text.components(separatedBy: "\n\n").filter { $0.hasPrefix("data: {") }
            #expect(chunks.count == 18)
            #expect(reply.text.hasSuffix("data: [DONE]\n\n"))
        }
    }
}

@Suite("Proxy configuration")
struct ProxyConfigurationTests {
    @Test func routeBasesLoseOneTrailingSlashButKeepTheScheme() {
        #expect(ProxyRoute(name: "a", upstream: "https://api.openai.com/v1/").upstream == "https://api.openai.com/v1")
        #expect(
            ProxyRoute(name: "a", upstream: "http://h/v1", recordedBase: "vertexai://").recordedBase == "vertexai://"
        )
        #expect(ProxyRoute(name: "a", upstream: "http://h/v1").recordedBase == "http://h/v1")
    }
}
