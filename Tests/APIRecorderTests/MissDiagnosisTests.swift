import Foundation
import TestSupport
import Testing

@testable import APIRecorder

/// Why a replay missed: the nearest recording, the differences by JSON path, and the known
/// causes of drift.
@Suite("Miss diagnostics")
struct MissDiagnosisTests {
    static let testID = "tests/unit/test_diagnosis.py::test_it"

    static func chat(_ prompt: String, extra: JSONObject = JSONObject()) -> JSONValue {
        var body: JSONObject = ["model": "m", "messages": [["role": "user", "content": .string(prompt)]]]
        for (key, value) in extra.members { body[key] = value }
        return .object(body)
    }

    /// Records `body` under `testID` in a fresh root, then asks replay for `request`.
    private func miss(
        recorded body: JSONValue,
        requested request: JSONValue,
        recordedTestID: String? = testID,
        requestedTestID: String? = testID,
        path: String = "/chat/completions",
        recordedPath: String? = nil,
        adapter: any ProviderAdapter = OpenAIAdapter()
    ) async throws -> (Answer, PipelineHarness) {
        let harness = try PipelineHarness(
            transport: ScriptedTransport(body: #"{"id": "x", "object": "chat.completion", "choices": []}"#)
        )
        _ = await harness.send(
            exchangeRequest(recordedPath ?? path, body: body, testID: recordedTestID),
            adapter: adapter,
            mode: .record
        )
        let answer = await harness.send(
            exchangeRequest(path, body: request, testID: requestedTestID),
            adapter: adapter,
            mode: .replay
        )
        return (answer, harness)
    }

    @Test func aChangedPromptNamesTheRecordingAndThePath() async throws {
        let (answer, harness) = try await miss(recorded: Self.chat("Say hello."), requested: Self.chat("Say goodbye."))
        #expect(answer.status == 404)
        let error = try #require(answer.json?["error"])
        #expect(error["type"] == "recording_not_found")
        let nearest = try #require(error["nearest"])
        #expect(nearest["file"]?.stringValue == harness.recordings.first)
        #expect(nearest["test_id"] == .string(Self.testID))
        #expect(
            nearest["differences"] == [
                ["path": "messages[0].content", "recorded": "Say hello.", "requested": "Say goodbye."]
            ]
        )
        #expect(nearest["hints"] == [])
        let message = error["message"]?.stringValue ?? ""
        #expect(
            message.contains(#"messages[0].content: recorded "Say hello.", requested "Say goodbye.""#),
            "\(message)"
        )
        #expect(answer.response.refusal?.diagnosis?.differences.count == 1)
    }

    @Test func nothingOfThatEndpointGivesNull() async throws {
        let (answer, _) = try await miss(
            recorded: Self.chat("hi"),
            requested: ["model": "m", "input": "hi"],
            path: "/embeddings",
            recordedPath: "/chat/completions"
        )
        #expect(answer.status == 404)
        #expect(answer.json?["error"]?["nearest"] == .null)
        #expect(answer.json?["error"]?["message"]?.stringValue?.contains("No recording of this endpoint") == true)
    }

    @Test func aRenamedTestNamesTheOtherTestID() async throws {
        let (answer, _) = try await miss(
            recorded: Self.chat("hi"),
            requested: Self.chat("hi"),
            recordedTestID: "tests/unit/test_diagnosis.py::test_old_name",
            requestedTestID: "tests/unit/test_diagnosis.py::test_new_name"
        )
        let nearest = try #require(answer.json?["error"]?["nearest"])
        #expect(nearest["test_id"] == "tests/unit/test_diagnosis.py::test_old_name")
        #expect(nearest["differences"] == [])
        #expect(nearest["hints"]?.arrayValue?.first?.stringValue?.contains("test_old_name") == true)
    }

    @Test func theNearestIsTheOneThatDiffersLeast() async throws {
        let harness = try PipelineHarness(transport: ScriptedTransport(body: #"{"id": "x", "choices": []}"#))
        for prompt in ["a b c", "completely different", "a b d"] {
            _ = await harness.send(
                exchangeRequest(
                    "/chat/completions",
                    body: Self.chat(prompt, extra: prompt == "a b d" ? [:] : ["temperature": 1])
                ),
                adapter: OpenAIAdapter(),
                mode: .record
            )
        }
        let answer = await harness.send(
            exchangeRequest("/chat/completions", body: Self.chat("a b e")),
            adapter: OpenAIAdapter(),
            mode: .replay
        )
        let differences = answer.response.refusal?.diagnosis?.differences ?? []
        #expect(differences == [JSONDifference(path: "messages[0].content", recorded: "a b d", requested: "a b e")])
    }

    static let drift: [(JSONObject, JSONObject, String)] = [
        (["max_tokens": nil], [:], "max_tokens is null in the recording but absent now"),
        ([:], ["max_tokens": 0], "max_tokens is absent in the recording but 0 now"),
        (["tool_choice": "auto"], [:], "tool_choice \"auto\""),
        (["model": "gpt-4o-2024-08-06"], ["model": "gpt-4o"], "date suffix"),
        (["temperature": 0.700001], ["temperature": 0.70002], "float differs only in its last decimals"),
        (["stream_options": ["include_usage": true]], [:], "stream_options"),
    ]

    @Test(arguments: drift)
    func knownCausesOfDriftAreNamed(_ recorded: JSONObject, _ requested: JSONObject, _ hint: String) async throws {
        let (answer, _) = try await miss(
            recorded: Self.chat("hi", extra: recorded),
            requested: Self.chat("hi", extra: requested)
        )
        let hints = answer.response.refusal?.diagnosis?.hints ?? []
        #expect(hints.contains { $0.contains(hint) }, "\(hints)")
    }

    @Test func contentAsAStringOrAsTextPartsIsNamed() async throws {
        let parts: JSONValue = [
            "model": "m", "messages": [["role": "user", "content": [["type": "text", "text": "hi"]]]],
        ]
        let (answer, _) = try await miss(recorded: Self.chat("hi"), requested: parts)
        #expect(answer.response.refusal?.diagnosis?.hints.contains { $0.contains("list of text parts") } == true)
    }

    @Test func aDifferentToolCallIDIsNamed() async throws {
        func loop(_ id: String) -> JSONValue {
            [
                "model": "m",
                "messages": [
                    ["role": "user", "content": "weather?"],
                    [
                        "role": "assistant",
                        "tool_calls": [
                            ["id": .string(id), "type": "function", "function": ["name": "w", "arguments": "{}"]]
                        ],
                    ],
                    ["role": "tool", "tool_call_id": .string(id), "content": "sunny"],
                ],
            ]
        }
        let (answer, _) = try await miss(recorded: loop("call_aaaaaaaaaaaa"), requested: loop("call_bbbbbbbbbbbb"))
        let diagnosis = try #require(answer.response.refusal?.diagnosis)
        #expect(diagnosis.differences.map(\.path) == ["messages[1].tool_calls[0].id", "messages[2].tool_call_id"])
        #expect(diagnosis.hints.contains { $0.contains("tool-call id differs") })
    }

    @Test func plainHTTPAndToolMissesAreDiagnosedToo() async throws {
        let (http, _) = try await miss(
            recorded: ["query": "Paris", "max_results": 3],
            requested: ["query": "Lyon", "max_results": 3],
            path: "/search",
            adapter: PlainHTTPAdapter()
        )
        #expect(
            http.json?["error"]?["nearest"]?["differences"] == [
                ["path": "query", "recorded": "Paris", "requested": "Lyon"]
            ]
        )

        let directory = try TemporaryDirectory()
        let store = RecordingStore(root: directory.path)
        _ = try await Recorder(store: store, mode: .record).invokeTool(
            provider: "db",
            name: "query",
            arguments: ["sql": "select 1"],
            testID: Self.testID
        ) { ["rows": 1] }
        await #expect {
            _ = try await Recorder(store: store, mode: .replay).invokeTool(
                provider: "db",
                name: "query",
                arguments: ["sql": "select 2"],
                testID: Self.testID
            ) { ["rows": 2] }
        } throws: { error in
            guard let error = error as? RecorderError, let diagnosis = error.diagnosis else { return false }
            return diagnosis.differences == [
                JSONDifference(path: "kwargs.sql", recorded: "select 1", requested: "select 2")
            ]
                && error.message.contains("kwargs.sql")
        }
    }

    @Test func longValuesAreShortenedAndPathsQuoteOddKeys() {
        let long = String(repeating: "x", count: 500)
        let (differences, _) = JSONDifference.between(
            recorded: ["a": ["odd key": .string(long)], "list": [1, 2]],
            requested: ["a": ["odd key": "y"], "list": [1]]
        )
        #expect(differences.map(\.path) == [#"a["odd key"]"#, "list[1]"])
        let shown = JSONDifference.shortened(.string(long)).stringValue ?? ""
        #expect(shown.count < 200 && shown.hasSuffix("(500 characters)"))
        #expect(differences[1].requested == nil)
    }

    @Test func theProvidersOwnErrorObjectCarriesNearest() async throws {
        let ollama = try await miss(
            recorded: Self.chat("a"),
            requested: Self.chat("b"),
            path: "/api/chat",
            adapter: OllamaAdapter()
        ).0
        #expect(ollama.json?["error"]?.stringValue?.hasPrefix("recording_not_found") == true)
        #expect(ollama.json?["nearest"]?["differences"]?.arrayValue?.count == 1)
        let anthropic = try await miss(
            recorded: Self.chat("a"),
            requested: Self.chat("b"),
            path: "/v1/messages",
            adapter: PlainHTTPAdapter()
        ).0
        #expect(anthropic.json?["type"] == "error")
        #expect(anthropic.json?["error"]?["nearest"]?["differences"]?.arrayValue?.count == 1)
    }

    @Test func aStaleNameIsExplainedByTheRuleThatGaveIt() throws {
        let recording = Recording.inference(
            testID: Self.testID,
            method: "POST",
            url: "http://h/v1/chat/completions",
            body: ["model": "m", "temperature": 0.1234567],
            endpoint: "/v1/chat/completions",
            model: "m",
            outcome: .body(["id": "x"])
        )
        let withoutTestID = RequestIdentity.inference(
            method: "POST",
            url: "http://h/v1/chat/completions",
            body: ["model": "m", "temperature": 0.1234567],
            testID: nil
        ).hash
        #expect(
            StaleRecording.namingRules(of: recording, named: "\(withoutTestID).json").first?.contains(
                "without its test id"
            ) == true
        )
        let raw = RequestIdentity.sha256Hex(
            JSONValue.object([
                "method": "POST", "endpoint": "/v1/chat/completions", "body": ["model": "m", "temperature": 0.1234567],
                "test_id": .string(Self.testID),
            ]).canonicalBytes()
        )
        #expect(
            StaleRecording.namingRules(of: recording, named: "\(raw).json") == [
                "it was named before today's normalisation of the body (floats to 5 decimals, scores, ids, project_id)"
            ]
        )
        #expect(StaleRecording.namingRules(of: recording, named: "\(String(repeating: "0", count: 64)).json").isEmpty)
    }
}
