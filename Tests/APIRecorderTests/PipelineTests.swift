import Foundation
import Synchronization
import TestSupport
import Testing

@testable import APIRecorder

/// The exchange pipeline, without sockets: what every front end gets from it.
@Suite("Exchange pipeline")
struct PipelineTests {
    /// One upstream answer per adapter, including what the recording format cannot hold as it
    /// came: a non-JSON body on a JSON endpoint, a non-JSON event in a stream, pretty-printed error
    /// bodies, CRLF line ends, lines that are not JSON.
    struct Case: Sendable, CustomTestStringConvertible {
        let name: String
        let adapter: any ProviderAdapter
        let request: ExchangeRequest
        let status: Int
        let contentType: String
        let chunks: [String]
        var testDescription: String { name }
    }

    static let chat: JSONValue = ["model": "m", "messages": [["role": "user", "content": "hi"]]]
    static let streamedChat: JSONValue = [
        "model": "m", "messages": [["role": "user", "content": "hi"]], "stream": true,
    ]
    static let chunk =
        #"{"id":"c1","object":"chat.completion.chunk","created":5,"model":"m","choices":[{"index":0,"delta":{"content":"Hel"}}]}"#
    static let chunk2 =
        #"{"id":"c1","object":"chat.completion.chunk","created":5,"model":"m","choices":[{"index":0,"delta":{"content":"lo"}}]}"#

    static let cases: [Case] = [
        Case(
            name: "OpenAI chat, whole",
            adapter: OpenAIAdapter(),
            request: exchangeRequest("/chat/completions", body: chat),
            status: 200,
            contentType: "application/json; charset=utf-8",
            chunks: [
                #"{"id": "chatcmpl-9", "object": "chat.completion", "created": 17, "model": "m", "#,
                #""choices": [{"index": 0, "message": {"role": "assistant", "content": "hi", "tool_calls": [{"id": "call_x", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}, "finish_reason": "tool_calls"}]}"#,
            ]
        ),
        Case(
            name: "OpenAI chat, a body that is not JSON",
            adapter: OpenAIAdapter(),
            request: exchangeRequest("/chat/completions", body: chat),
            status: 200,
            contentType: "text/html",
            chunks: ["<html>upstream trouble</html>"]
        ),
        Case(
            name: "OpenAI chat, a pretty-printed 429",
            adapter: OpenAIAdapter(),
            request: exchangeRequest("/chat/completions", body: chat),
            status: 429,
            contentType: "application/json",
            chunks: ["{\n  \"error\": {\n    \"message\": \"slow down\",\n    \"type\": \"requests\"\n  }\n}\n"]
        ),
        Case(
            name: "OpenAI chat, a stream with a non-JSON event and CRLF",
            adapter: OpenAIAdapter(),
            request: exchangeRequest("/chat/completions", body: streamedChat),
            status: 200,
            contentType: "text/event-stream",
            chunks: [
                "data: \(chunk)\r\n\r\n: a comment\n\ndata: keep-alive\n\n", "data: \(chunk2)\n", "\ndata: [DONE]\n\n",
            ]
        ),
        Case(
            name: "OpenAI Responses, a stream without [DONE]",
            adapter: OpenAIAdapter(),
            request: exchangeRequest("/responses", body: ["model": "m", "input": "hi", "stream": true]),
            status: 200,
            contentType: "text/event-stream",
            chunks: [
                "event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"id\":\"resp_1\"}}\n\n",
                "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"Hi\"}\n\n",
                "data: [DONE]\n\n",
            ]
        ),
        Case(
            name: "Ollama, NDJSON with a line that is not JSON",
            adapter: OllamaAdapter(),
            request: exchangeRequest("/api/chat", body: chat, base: "http://localhost:11434"),
            status: 200,
            contentType: "application/x-ndjson",
            chunks: [
                #"{"model":"m","created_at":"2026-01-01T00:00:00Z","message":{"role":"assistant","content":"Hel"},"done":false}"#
                    + "\nnot json\n",
                #"{"model":"m","created_at":"2026-01-01T00:00:01Z","message":{"role":"assistant","content":"lo"},"done":true,"total_duration":5}"#,
            ]
        ),
        Case(
            name: "Ollama, a whole body",
            adapter: OllamaAdapter(),
            request: exchangeRequest(
                "/api/chat",
                body: ["model": "m", "stream": false],
                base: "http://localhost:11434"
            ),
            status: 200,
            contentType: "application/json; charset=utf-8",
            chunks: [#"{"model": "m", "created_at": "2026-01-01T00:00:00Z", "done": true}"# + "\n"]
        ),
        Case(
            name: "plain HTTP, a pretty JSON body",
            adapter: PlainHTTPAdapter(),
            request: exchangeRequest("/search", body: ["query": "q"], base: "https://api.tavily.test"),
            status: 201,
            contentType: "application/json",
            chunks: ["{\n  \"results\": [1, 2.50, \"x\"]\n}"]
        ),
        Case(
            name: "plain HTTP, a CRLF stream ending without a newline",
            adapter: PlainHTTPAdapter(),
            request: exchangeRequest(
                "/v1/messages",
                body: ["model": "m", "stream": true],
                base: "https://api.anthropic.test"
            ),
            status: 200,
            contentType: "text/event-stream; charset=utf-8",
            chunks: [
                "event: message_start\r\ndata: {\"type\":\"message_start\"}\r\n\r\n",
                "event: ping\r\ndata: {}\r\n\r\ndata: last",
            ]
        ),
        Case(
            name: "Gemini, an SSE stream with a non-JSON event",
            adapter: GeminiAdapter(),
            request: exchangeRequest(
                "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
                body: ["contents": []],
                query: "alt=sse",
                base: "https://generativelanguage.test"
            ),
            status: 200,
            contentType: "text/event-stream",
            chunks: [
                "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Hi\"}]}, \"finishReason\": \"STOP\"}]}\r\n\r\n",
                "data: [PING]\n\n",
            ]
        ),
        Case(
            name: "MCP, an SSE response",
            adapter: MCPAdapter(),
            request: exchangeRequest(
                "/mcp",
                body: ["jsonrpc": "2.0", "id": 7, "method": "tools/list"],
                base: "http://tools.test"
            ),
            status: 200,
            contentType: "text/event-stream",
            chunks: ["event: message\nid: 1\ndata: {\"jsonrpc\": \"2.0\", \"id\": 7, \"result\": {\"tools\": []}}\n\n"]
        ),
        Case(
            name: "MCP, a JSON response",
            adapter: MCPAdapter(),
            request: exchangeRequest(
                "/mcp",
                body: ["jsonrpc": "2.0", "id": "a", "method": "tools/call", "params": ["name": "t"]],
                base: "http://tools.test"
            ),
            status: 200,
            contentType: "application/json",
            chunks: [#"{"result": {"content": []}, "id": "a", "jsonrpc": "2.0"}"#]
        ),
    ]

    @Test(arguments: cases)
    func recordModeShowsTheClientWhatReplayWillShow(_ item: Case) async throws {
        let transport = ScriptedTransport { _ in
            .response(status: item.status, contentType: item.contentType, chunks: item.chunks.map { Array($0.utf8) })
        }
        let harness = try PipelineHarness(transport: transport)
        let live = await harness.send(item.request, adapter: item.adapter, mode: .record)
        #expect(harness.recordings.count == 1, "recorded")
        for file in harness.recordings {
            #expect(RecordingVerifier.verify(path: "\(harness.directory.path)/\(file)").isOK, "\(file)")
        }
        let replayed = await harness.send(item.request, adapter: item.adapter, mode: .replay)
        #expect(replayed.response.refusal == nil)
        #expect(live.seenByClient == replayed.seenByClient)
        #expect(transport.calls.load(ordering: .relaxed) == 1)
    }

    @Test func liveStreamFramesGoOutBeforeTheUpstreamEndsAndTheFileBeforeTheLastOne() async throws {
        let (body, feed) = AsyncThrowingStream.makeStream(of: [UInt8].self)
        let harness = try PipelineHarness(
            transport: ScriptedTransport { _ in .streamed(status: 200, contentType: "text/event-stream", body: body) }
        )
        let request = exchangeRequest("/chat/completions", body: Self.streamedChat)
        let response = await harness.pipeline(.record).respond(
            to: request,
            adapter: OpenAIAdapter(),
            upstream: harness.upstream
        )
        #expect(response.status == 200 && response.header("content-type") == "text/event-stream")
        let received = Mutex<[String]>([])
        let done = Task {
            try await response.body.write { bytes in
                received.withLock { $0.append(String(decoding: bytes, as: UTF8.self)) }
            }
        }
        // Half an event, then the rest: the frame goes out whole, once complete.
        feed.yield(Array("data: \(Self.chunk)".utf8))
        feed.yield(Array("\n\n".utf8))
        try await waitUntil { received.withLock { $0.count } == 1 }
        #expect(received.withLock { $0 }.first?.hasPrefix("data: {") == true)
        #expect(harness.recordings.isEmpty, "the recording is written when the stream ends")
        feed.yield(Array("data: [DONE]\n\n".utf8))
        feed.finish()
        try await done.value
        #expect(harness.recordings.count == 1)
        #expect(received.withLock { $0 }.last == "data: [DONE]\n\n")
    }

    @Test func aStreamThatFailsMidwayIsRecordedAndFailsTheSameWayOnReplay() async throws {
        let transport = ScriptedTransport { _ in
            .response(
                status: 200,
                contentType: "text/event-stream",
                chunks: [sse(Self.chunk)],
                failure: UpstreamError(.failed, "the upstream closed the connection")
            )
        }
        let harness = try PipelineHarness(transport: transport)
        let request = exchangeRequest("/chat/completions", body: Self.streamedChat)
        let live = await harness.send(request, adapter: OpenAIAdapter(), mode: .record)
        #expect(live.failure != nil)
        let recording = try Recording(contentsOfFile: "\(harness.directory.path)/\(harness.recordings[0])")
        #expect(recording.isException && recording.chunks?.count == 1)
        let replayed = await harness.send(request, adapter: OpenAIAdapter(), mode: .replay)
        #expect(replayed.failure is RecordedStreamFailure)
        #expect(replayed.text == live.text)
    }

    @Test func aClientThatLeavesDoesNotStopTheRecording() async throws {
        let transport = ScriptedTransport { _ in
            .response(
                status: 200,
                contentType: "text/event-stream",
                chunks: [sse(Self.chunk), sse(Self.chunk2), sse("[DONE]")]
            )
        }
        let harness = try PipelineHarness(transport: transport)
        let response = await harness.pipeline(.record).respond(
            to: exchangeRequest("/chat/completions", body: Self.streamedChat),
            adapter: OpenAIAdapter(),
            upstream: harness.upstream
        )
        struct Gone: Error {}
        await #expect(throws: Gone.self) { try await response.body.write { _ in throw Gone() } }
        let recording = try Recording(contentsOfFile: "\(harness.directory.path)/\(harness.recordings[0])")
        #expect(recording.chunks?.count == 2 && !recording.isException)
    }

    // MARK: Single flight

    @Test func waitersGetTheLeadersFailureTogetherNotOneAfterAnother() async throws {
        let transport = ScriptedTransport { _ in
            try? await Task.sleep(for: .seconds(1))
            return .failure(UpstreamError(.timedOut, "no answer within the timeout"))
        }
        let harness = try PipelineHarness(transport: transport)
        let pipeline = harness.pipeline(.recordIfMissing)
        let clock = ContinuousClock()
        let start = clock.now
        let answers = await withTaskGroup(of: (Int, Duration).self) { group in
            for _ in 0..<8 {
                group.addTask {
                    let answer = await harness.send(
                        exchangeRequest("/chat/completions", body: Self.chat),
                        adapter: OpenAIAdapter(),
                        mode: .recordIfMissing,
                        pipeline: pipeline
                    )
                    return (answer.status, clock.now - start)
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(answers.allSatisfy { $0.0 == 504 })
        #expect(transport.calls.load(ordering: .relaxed) == 1, "one upstream call for eight identical requests")
        // A staircase (each waiter retrying after the one before it) would make eight upstream
        // calls and spread the answers over seven more upstream timeouts (7 s); together, they all
        // come with the leader's.
        let times = answers.map(\.1)
        #expect(times.max()! - times.min()! < .seconds(2), "no staircase: \(times)")
        #expect(pipeline.recorder.report().errors == 8)
    }

    @Test func identicalRequestsShareOneRecording() async throws {
        let transport = ScriptedTransport { _ in
            try? await Task.sleep(for: .milliseconds(200))
            return .response(
                status: 200,
                contentType: "application/json",
                chunks: [Array(#"{"id": "x", "object": "chat.completion", "choices": []}"#.utf8)]
            )
        }
        let harness = try PipelineHarness(transport: transport)
        let pipeline = harness.pipeline(.recordIfMissing)
        let statuses = await withTaskGroup(of: Int.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    await harness.send(
                        exchangeRequest("/chat/completions", body: Self.chat),
                        adapter: OpenAIAdapter(),
                        mode: .recordIfMissing,
                        pipeline: pipeline
                    ).status
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(statuses == Array(repeating: 200, count: 8))
        #expect(transport.calls.load(ordering: .relaxed) == 1)
        let report = pipeline.recorder.report()
        #expect(report.recorded == 1 && report.hits == 7)
    }

    @Test func aRenderedReplayIsKeptUntilItsFileChanges() async throws {
        let transport = ScriptedTransport { _ in
            .response(
                status: 200,
                contentType: "application/json",
                chunks: [Array(#"{"id": "x", "object": "chat.completion", "choices": [], "model": "first"}"#.utf8)]
            )
        }
        let harness = try PipelineHarness(transport: transport)
        let request = exchangeRequest("/chat/completions", body: Self.chat)
        _ = await harness.send(request, adapter: OpenAIAdapter(), mode: .record)
        let replay = harness.pipeline(.replay)
        let first = await harness.send(request, adapter: OpenAIAdapter(), mode: .replay, pipeline: replay)
        let again = await harness.send(request, adapter: OpenAIAdapter(), mode: .replay, pipeline: replay)
        #expect(first.json?["model"] == "first" && again.body == first.body)
        // Another process rewrites the file (same name, other content): the next replay shows it.
        let file = try #require(harness.recordings.first)
        let path = harness.directory.path + "/" + file
        var recording = try JSONValue(parsing: try readBytes(path))
        guard case .object(var top) = recording, case .object(var response)? = top["response"],
            case .object(var body)? = response["body"], case .object(var data)? = body["__data__"]
        else { throw RecordingError("unexpected recording shape") }
        data["model"] = "second, and longer"
        body["__data__"] = .object(data)
        response["body"] = .object(body)
        top["response"] = .object(response)
        recording = .object(top)
        _ = try harness.directory.write(file, recording.fileBytes())
        let changed = await harness.send(request, adapter: OpenAIAdapter(), mode: .replay, pipeline: replay)
        #expect(changed.json?["model"] == "second, and longer")
    }

    // MARK: What cannot be saved

    @Test(arguments: [
        "tests/\(String(repeating: "x", count: 5000))/test_a.py::test_b",
        String(repeating: "deep/", count: 900) + "test_a.py::test_b",
    ])
    func testIDsTheFileSystemCannotHoldAreRefusedBeforeTheUpstream(_ testID: String) async throws {
        let transport = ScriptedTransport(body: "{}")
        let harness = try PipelineHarness(transport: transport)
        for mode in [RecordingMode.record, .recordIfMissing, .replay] {
            let answer = await harness.send(
                exchangeRequest("/chat/completions", body: Self.chat, testID: testID),
                adapter: OpenAIAdapter(),
                mode: mode
            )
            #expect(answer.status == 400, "\(mode)")
            #expect(answer.json?["error"]?["type"] == "invalid_test_id", "\(mode)")
            #expect(answer.text.count < 2000, "the message does not echo the whole id")
        }
        #expect(transport.calls.load(ordering: .relaxed) == 0)
        let left = try FileManager.default.contentsOfDirectory(atPath: harness.directory.path)
        #expect(left.isEmpty, "no folders are made for a refused id")
    }

    @Test func aSaveThatFailsReachesTheClientAndTheReport() async throws {
        let harness = try PipelineHarness(
            transport: ScriptedTransport { request in
                request.body.count > 100
                    ? .response(
                        status: 200,
                        contentType: "text/event-stream",
                        chunks: [sse(Self.chunk), sse("[DONE]")]
                    )
                    : .response(
                        status: 200,
                        contentType: "application/json",
                        chunks: [Array(#"{"id": "x", "choices": []}"#.utf8)]
                    )
            }
        )
        // The test's folder is a file: nothing can be written there.
        let testID = "tests/blocked/test_a.py::test_b"
        try harness.directory.write("tests/blocked/recordings", Array("not a folder".utf8))
        let pipeline = harness.pipeline(.record)
        let whole = await harness.send(
            exchangeRequest("/chat/completions", body: Self.chat, testID: testID),
            adapter: OpenAIAdapter(),
            mode: .record,
            pipeline: pipeline
        )
        #expect(whole.status == 500)
        #expect(whole.json?["error"]?["type"] == "recording_storage_error")
        #expect(whole.json?["error"]?["message"]?.stringValue?.contains("tests/blocked/recordings") == true)

        let body: JSONValue = [
            "model": "m", "messages": [["role": "user", "content": "hi"]], "stream": true,
            "padding": .string(String(repeating: "p", count: 100)),
        ]
        let streamed = await harness.send(
            exchangeRequest("/chat/completions", body: body, testID: testID),
            adapter: OpenAIAdapter(),
            mode: .record,
            pipeline: pipeline
        )
        #expect(streamed.failure != nil, "the stream is cut before its end")
        #expect(!streamed.text.contains("[DONE]"))
        let report = pipeline.recorder.report()
        #expect(report.storeFailures.count == 2 && report.recorded == 0 && report.errors == 2)
    }

    @Test func requestsAsDeepAsTheParserAllowsAreRecordedAndReadBack() async throws {
        func nested(_ depth: Int) -> JSONValue {
            var value: JSONValue = "bottom"
            for _ in 0..<depth { value = ["n": value] }
            return value
        }
        let harness = try PipelineHarness(transport: ScriptedTransport(body: #"{"ok": true}"#))
        let deep = exchangeRequest("/deep", body: ["model": "m", "payload": nested(JSONValue.maximumDepth - 2)])
        let recorded = await harness.send(deep, adapter: PlainHTTPAdapter(), mode: .record)
        #expect(recorded.status == 200)
        let replayed = await harness.send(deep, adapter: PlainHTTPAdapter(), mode: .replay)
        #expect(replayed.status == 200 && replayed.text == recorded.text, "\(replayed.text)")
        #expect(RecordingVerifier.verify(path: "\(harness.directory.path)/\(harness.recordings[0])").isOK)

        let tooDeep = exchangeRequest("/deep", body: ["payload": nested(JSONValue.maximumDepth + 1)])
        let refused = await harness.send(tooDeep, adapter: PlainHTTPAdapter(), mode: .record)
        #expect(refused.status == 400)
        #expect(harness.transport.calls.load(ordering: .relaxed) == 1)
    }

    // MARK: Corrupt recordings

    @Test(arguments: [
        (#""body": 42, "is_streaming": false"#, "response.body of an inference recording is a number (42)"),
        (
            #""body": {"__type__": "openai.types.chat.chat_completion.ChatCompletion", "__data__": null}, "is_streaming": false"#,
            "response.body.__data__ is null"
        ),
        (
            #""body": {"choices": []}, "is_streaming": true"#,
            "response.is_streaming is true but response.body is an object"
        ),
        (#""body": [1, 2], "is_streaming": true"#, "response.body[0] is a number (1), not an object"),
        (#""body": null, "is_streaming": false, "is_exception": true"#, "response.exception_data is not an object"),
    ])
    func corruptRecordingsAnswer500NamingTheFileAndTheFault(_ response: String, _ reason: String) async throws {
        let harness = try PipelineHarness(transport: ScriptedTransport(body: "{}"))
        let request = exchangeRequest("/chat/completions", body: Self.chat)
        let exchange = try OpenAIAdapter().prepare(request)
        let file = """
            {"test_id": "tests/unit/test_pipeline.py::test_it", "request": {"method": "POST", \
            "url": "http://upstream.test/v1/chat/completions", "headers": {}, "body": \(String(decoding: Self.chat.compactBytes(), as: UTF8.self)), \
            "endpoint": "/v1/chat/completions", "model": "m"}, "response": {\(response)}}
            """
        let path = try harness.directory.write("tests/unit/recordings/\(exchange.hash).json", Array(file.utf8))
        let answer = await harness.send(request, adapter: OpenAIAdapter(), mode: .replay)
        #expect(answer.status == 500)
        #expect(answer.json?["error"]?["type"] == "corrupt_recording")
        let message = answer.json?["error"]?["message"]?.stringValue ?? ""
        #expect(message.contains(path) && message.contains(reason), "\(message)")
        #expect(RecordingVerifier.verify(path: path).problems.first?.description.contains(reason) == true)
    }

    // MARK: Cancellation

    @Test func aCancelledExchangeWritesNothing() async throws {
        let (body, feed) = AsyncThrowingStream.makeStream(of: [UInt8].self)
        let harness = try PipelineHarness(
            transport: ScriptedTransport { _ in .streamed(status: 200, contentType: "text/event-stream", body: body) }
        )
        let response = await harness.pipeline(.record).respond(
            to: exchangeRequest("/chat/completions", body: Self.streamedChat),
            adapter: OpenAIAdapter(),
            upstream: harness.upstream
        )
        let started = Flag()
        let writer = Task {
            try await response.body.write { _ in started.set() }
        }
        feed.yield(sse(Self.chunk))
        try await waitUntil { started.isSet }
        writer.cancel()
        feed.finish(throwing: UpstreamError(.cancelled, "cancelled"))
        _ = await writer.result
        #expect(harness.recordings.isEmpty, "nothing partial is written")
    }
}
