import APIRecorder
import APIRecorderProxy
import Foundation
import HTTPTypes
import ServerTestSupport
import Testing

/// The proxy's tool endpoint (`/__recorder/tools/...`): tool calls from clients in any language,
/// through the same pipeline, and so the same files, as Swift's `Recorder.invokeTool`.
@Suite("Tool calls through the proxy", .timeLimit(.minutes(2)))
struct ToolEndpointTests {
    private let testID = "tests/test_agent.py::test_search"

    private func invocation(_ kwargs: JSONValue, testID: String? = nil) -> [UInt8] {
        var body: JSONObject = ["provider": "tavily", "tool_name": "web_search", "kwargs": kwargs]
        if let testID { body["test_id"] = .string(testID) }
        return JSONValue.object(body).compactBytes()
    }

    private func invoke(_ client: TestClient, _ kwargs: JSONValue) async throws -> TestClient.Reply {
        try await client.send(.post, "/__recorder/tools/invoke", body: invocation(kwargs, testID: testID))
    }

    private func post(_ client: TestClient, result: JSONValue) async throws -> TestClient.Reply {
        try await client.send(.post, "/__recorder/tools/result", body: result.compactBytes())
    }

    @Test func aCallRecordedThroughTheProxyIsTheFileRecordedToolWritesAndReplays() async throws {
        let viaProxy = try TemporaryDirectory()
        let inProcess = try TemporaryDirectory()
        let kwargs: JSONValue = ["query": "Paris weather", "top_k": 3]
        let result: JSONValue = ["results": [["title": "Météo Paris", "score": 0.987_654_321]], "answer": .null]
        try await withProxy(mode: .recordIfMissing, root: viaProxy.path, upstreamPort: nil) { port in
            let client = TestClient(port: port)
            let run = try await invoke(client, kwargs)
            #expect(run.status == 200 && run.json?["outcome"] == "run")
            let callID = try #require(run.json?["call_id"]?.stringValue)
            let recorded = try await post(client, result: ["call_id": .string(callID), "result": result])
            #expect(recorded.status == 200 && recorded.json?["outcome"] == "recorded")
            #expect(recorded.json?["result"] == result, "what a replay will give")
            // The same call again is replayed, and the result id is spent.
            let again = try await invoke(client, kwargs)
            #expect(again.json?["outcome"] == "replayed" && again.json?["result"] == result)
            let spent = try await post(client, result: ["call_id": .string(callID), "result": 1])
            #expect(spent.status == 404 && spent.json?["error"]?["type"] == "unknown_tool_call")
        }
        _ = try await Recorder(store: RecordingStore(root: inProcess.path), mode: .record).invokeTool(
            provider: "tavily",
            name: "web_search",
            arguments: kwargs,
            testID: testID
        ) { result }
        let proxyFiles = viaProxy.files()
        #expect(proxyFiles.count == 1)
        #expect(proxyFiles == inProcess.files())
        let name = try #require(proxyFiles.first)
        #expect(name.hasPrefix("tests/recordings/"))
        #expect(try readBytes(viaProxy.path + "/" + name) == readBytes(inProcess.path + "/" + name))

        try await withProxy(mode: .replay, root: viaProxy.path, upstreamPort: nil) { port in
            let client = TestClient(port: port)
            let replayed = try await invoke(client, kwargs)
            #expect(replayed.json?["outcome"] == "replayed" && replayed.json?["result"] == result)
            #expect(replayed.json?["path"]?.stringValue?.hasSuffix(name) == true)
            // A changed argument: a 404 that names the kwargs path that differs.
            let miss = try await invoke(client, ["query": "Paris weather", "top_k": 5])
            #expect(miss.status == 404)
            #expect(miss.json?["error"]?["type"] == "recording_not_found")
            #expect(miss.text.contains("kwargs.top_k"))
            #expect(miss.json?["error"]?["nearest"]?["differences"]?.arrayValue?.first?["path"] == "kwargs.top_k")
            let report = try await client.send(.get, "/__recorder/report?test_id=\(testID)").json
            #expect(report?["replayed"] == 1 && report?["missed"] == 1)
        }
    }

    @Test func aRaisedErrorIsRecordedAndReplayedAsTheError() async throws {
        let directory = try TemporaryDirectory()
        let error: JSONValue = ["type": "TimeoutError", "message": "search timed out"]
        try await withProxy(mode: .record, root: directory.path, upstreamPort: nil) { port in
            let client = TestClient(port: port)
            let callID = try #require(try await invoke(client, ["query": "slow"]).json?["call_id"])
            let recorded = try await post(client, result: ["call_id": callID, "error": error])
            #expect(recorded.json?["outcome"] == "recorded" && recorded.json?["error"] == error)
        }
        let file = try #require(directory.files().first)
        let recording = try Recording(contentsOfFile: directory.path + "/" + file)
        #expect(recording.exception?.type == "TimeoutError" && recording.exception?.category == "builtin")
        try await withProxy(mode: .replay, root: directory.path, upstreamPort: nil) { port in
            let replayed = try await invoke(TestClient(port: port), ["query": "slow"])
            #expect(replayed.json?["outcome"] == "replayed" && replayed.json?["error"] == error)
        }
    }

    @Test func identicalCallsWaitForTheOneThatRunsTheTool() async throws {
        let directory = try TemporaryDirectory()
        try await withProxy(mode: .recordIfMissing, root: directory.path, upstreamPort: nil) { port in
            let client = TestClient(port: port)
            let first = try await invoke(client, ["query": "once"])
            let callID = try #require(first.json?["call_id"])
            async let second = invoke(client, ["query": "once"])
            try await Task.sleep(for: .milliseconds(200))
            _ = try await post(client, result: ["call_id": callID, "result": "ran once"])
            let waited = try await second
            #expect(waited.json?["outcome"] == "replayed" && waited.json?["result"] == "ran once")
            let report = try await client.send(.get, "/__recorder/report").json
            #expect(report?["recorded"] == 1 && report?["replayed"] == 1)
        }
    }

    @Test func aCancelledCallRecordsNothingAndLiveModeRecordsNothing() async throws {
        let directory = try TemporaryDirectory()
        try await withProxy(mode: .record, root: directory.path, upstreamPort: nil) { port in
            let client = TestClient(port: port)
            let callID = try #require(try await invoke(client, ["query": "x"]).json?["call_id"])
            let cancelled = try await post(client, result: ["call_id": callID, "cancelled": true])
            #expect(cancelled.status == 408 && cancelled.json?["error"]?["type"] == "tool_call_abandoned")
        }
        try await withProxy(mode: .live, root: directory.path, upstreamPort: nil) { port in
            let client = TestClient(port: port)
            let callID = try #require(try await invoke(client, ["query": "x"]).json?["call_id"])
            let live = try await post(client, result: ["call_id": callID, "result": 42])
            #expect(live.json?["outcome"] == "passed_through" && live.json?["result"] == 42)
        }
        #expect(directory.files().isEmpty)
    }

    @Test func aCallLeftOpenIsAbandonedAfterTheTimeout() async throws {
        let directory = try TemporaryDirectory()
        var configuration = ProxyConfiguration.test(mode: .recordIfMissing, root: directory.path, upstreamPort: nil)
        configuration.upstreamTimeout = .milliseconds(300)
        try await withProxy(configuration) { port in
            let client = TestClient(port: port)
            #expect(try await invoke(client, ["query": "left open"]).json?["outcome"] == "run")
            // An identical call waits for it, and fails with it; a later one may run the tool.
            let waiting = try await invoke(client, ["query": "left open"])
            #expect(waiting.status == 408 && waiting.text.contains("nothing was recorded"))
            #expect(try await invoke(client, ["query": "left open"]).json?["outcome"] == "run")
        }
        #expect(directory.files().isEmpty)
    }

    @Test func badCallsGetClearErrors() async throws {
        let directory = try TemporaryDirectory()
        try await withProxy(mode: .replay, root: directory.path, upstreamPort: nil) { port in
            let client = TestClient(port: port)
            let cases: [(String, [UInt8], String)] = [
                ("/__recorder/tools/invoke", Array("{not json".utf8), "invalid_json"),
                ("/__recorder/tools/invoke", Array(#"{"tool_name": "x"}"#.utf8), "invalid_request_error"),
                (
                    "/__recorder/tools/invoke", Array(#"{"provider": "p", "tool_name": "x", "kwargs": [1]}"#.utf8),
                    "invalid_request_error"
                ),
                ("/__recorder/tools/invoke", invocation([:], testID: "../escape/test_x.py::test_x"), "invalid_test_id"),
                ("/__recorder/tools/result", Array(#"{"result": 1}"#.utf8), "invalid_request_error"),
                ("/__recorder/tools/result", Array(#"{"call_id": "nope", "result": 1}"#.utf8), "unknown_tool_call"),
            ]
            for (path, body, type) in cases {
                let reply = try await client.send(.post, path, body: body)
                #expect((400..<500).contains(reply.status), "\(path) \(reply.text)")
                #expect(reply.json?["error"]?["type"]?.stringValue == type, "\(reply.text)")
            }
        }
        #expect(directory.files().isEmpty)
    }

    @Test func credentialArgumentsStayOutOfTheRecording() async throws {
        let directory = try TemporaryDirectory()
        try await withProxy(mode: .record, root: directory.path, upstreamPort: nil) { port in
            let client = TestClient(port: port)
            let run = try await invoke(client, ["query": "q", "api_key": "tvly-secret-123"])
            _ = try await post(client, result: ["call_id": run.json?["call_id"] ?? .null, "result": "ok"])
        }
        let file = try #require(directory.files().first)
        let text = String(decoding: try readBytes(directory.path + "/" + file), as: UTF8.self)
        #expect(!text.contains("tvly-secret-123") && text.contains("\"query\": \"q\""))
    }
}
