import Foundation
import TestSupport
import Testing

@testable import APIRecorder

/// Gemini's REST API mapped to the reference's SDK-level recordings of `google-genai`.
@Suite("Gemini adapter")
struct GeminiAdapterTests {
    let adapter = GeminiAdapter()

    func request(_ path: String, query: String? = nil, body: JSONValue, testID: String? = "t") -> ExchangeRequest {
        ExchangeRequest(
            method: "POST",
            path: path,
            query: query,
            recordedBase: "https://generativelanguage.googleapis.com",
            headers: [("x-goog-api-key", "secret")],
            body: body.compactBytes(),
            testID: testID
        )
    }

    @Test(arguments: [
        (
            "/v1beta1/publishers/google/models/gemini-2.0-flash:generateContent", "vertexai",
            "publishers/google/models/gemini-2.0-flash", "/generate_content"
        ),
        (
            "/v1beta1/projects/p/locations/us-central1/publishers/google/models/gemini-2.0-flash:streamGenerateContent",
            "vertexai", "publishers/google/models/gemini-2.0-flash", "/generate_content_stream"
        ),
        ("/v1beta/models/gemini-2.5-flash:generateContent", "gemini", "gemini-2.5-flash", "/generate_content"),
        ("/v1/tunedModels/mine:streamGenerateContent", "gemini", "tunedModels/mine", "/generate_content_stream"),
    ])
    func pathsNameTheSDKCall(path: String, provider: String, model: String, endpoint: String) throws {
        let call = try #require(GeminiAdapter.ModelCall(path: path))
        #expect(call.provider == provider)
        #expect(call.model == model)
        #expect(call.endpoint == endpoint)
        #expect(call.url == "\(provider):///\(endpoint.dropFirst())")
    }

    @Test(arguments: [
        "/v1beta/interactions", "/v1beta/models/gemini-2.5-flash:countTokens", "/v1beta/models", "/chat/completions",
    ])
    func otherPathsAreNotContentGeneration(path: String) {
        #expect(!GeminiAdapter.handles(path: path))
    }

    @Test func keysChangeCaseButUserDataDoesNot() {
        let rest: JSONValue = [
            "functionCall": ["name": "get_weather", "args": ["cityName": "Paris", "unit_system": "metric"]],
            "finishReason": "STOP",
            "parameters": [
                "type": "OBJECT", "properties": ["cityName": ["type": "STRING", "maxLength": 10]], "anyOf": [],
            ],
            "parametersJsonSchema": ["additionalProperties": false],
        ]
        let snake = GeminiKeyCase.snake(rest)
        #expect(snake["function_call"]?["args"] == ["cityName": "Paris", "unit_system": "metric"])
        #expect(snake["finish_reason"] == "STOP")
        #expect(snake["parameters"]?["properties"]?["cityName"]?["max_length"] == 10)
        #expect(snake["parameters"]?["any_of"] == [])
        #expect(snake["parameters_json_schema"] == ["additionalProperties": false])
        #expect(GeminiKeyCase.camel(snake) == rest)
    }

    @Test func theBodyIsTheSDKCallAndKeysAreNotPartOfIt() throws {
        let body: JSONValue = [
            "contents": [["parts": [["text": "hello"]], "role": "user"]],
            "systemInstruction": ["parts": [["text": "be brief"]], "role": "user"],
            "tools": [["functionDeclarations": [["name": "f", "parameters_json_schema": ["type": "object"]]]]],
            "generationConfig": ["temperature": 0.2, "maxOutputTokens": 20],
            "api_key": "secret",
        ]
        let exchange = try adapter.prepare(
            request("/v1beta/models/gemini-2.5-flash:generateContent", query: "key=secret", body: body)
        )
        #expect(
            exchange.recordedBody == [
                "model": "gemini-2.5-flash", "contents": [["parts": [["text": "hello"]], "role": "user"]],
                "config": [
                    "temperature": 0.2, "max_output_tokens": 20,
                    "system_instruction": ["parts": [["text": "be brief"]], "role": "user"],
                    "tools": [
                        ["function_declarations": [["name": "f", "parameters_json_schema": ["type": "object"]]]]
                    ],
                ],
            ]
        )
        #expect(exchange.recorderRequest.summary.url == "gemini:///generate_content")
        guard case .model(let call, let sse) = exchange.details else {
            Issue.record("not a model call")
            return
        }
        #expect(!call.isStream && !sse)
        #expect(exchange.upstreamQuery == "key=secret", "the client's key goes upstream when there is no route key")
        let other = try adapter.prepare(
            request("/v1beta/models/gemini-2.5-flash:generateContent", query: "key=other", body: body)
        )
        #expect(other.hash == exchange.hash)
    }

    @Test func replaysSendCamelCaseWithoutWhatTheSDKAdds() throws {
        let exchange = try adapter.prepare(
            request(
                "/v1beta1/publishers/google/models/gemini-2.0-flash:streamGenerateContent",
                query: "alt=sse",
                body: ["contents": []]
            )
        )
        let chunk: JSONValue = [
            "sdk_http_response": ["headers": ["Date": "today"]],
            "candidates": [
                [
                    "content": ["parts": [["function_call": ["args": ["a_b": 1], "name": "f"]]]],
                    "finish_reason": "STOP",
                ]
            ],
        ]
        let recording = adapter.recording(
            for: exchange,
            live: LiveOutcome(outcome: .stream([chunk, chunk]), status: 200)
        )
        #expect(recording.url == "vertexai:///generate_content_stream")
        let plan = try adapter.replayPlan(for: recording, exchange: exchange)
        guard case .stream(let frames, _, let fails) = plan.body else {
            Issue.record("not a stream")
            return
        }
        #expect(!fails && frames.count == 2)
        #expect(
            String(decoding: frames[0], as: UTF8.self)
                == #"data: {"candidates":[{"content":{"parts":[{"functionCall":{"args":{"a_b":1},"name":"f"}}]},"finishReason":"STOP"}]}"#
                + "\n\n"
        )
    }

    @Test func errorsComeInGooglesShape() throws {
        let body = adapter.errorBody(ExchangeError(status: 404, type: "recording_not_found", message: "No recording."))
        let parsed = try JSONValue(parsing: body)
        #expect(parsed["error"]?["code"] == 404)
        #expect(parsed["error"]?["status"] == "NOT_FOUND")
        #expect(parsed["error"]?["message"] == "recording_not_found: No recording.")

        let outcome = GeminiAdapter.errorOutcome(
            Array(#"{"error": {"code": 429, "message": "Quota", "status": "RESOURCE_EXHAUSTED"}}"#.utf8),
            status: 429,
            provider: "gemini"
        )
        guard case .exception(let exception, _) = outcome else {
            Issue.record("no exception")
            return
        }
        #expect(exception.type == "ClientError")
        #expect(
            exception.message
                == "429 RESOURCE_EXHAUSTED. {'error': {'code': 429, 'message': 'Quota', 'status': 'RESOURCE_EXHAUSTED'}}"
        )
    }

    /// The REST body `google-genai` sends for each reference recording hashes to the file's name.
    @Test(.enabled(if: Shared.isAvailable, Shared.skipMessage))
    func referenceRecordingsHashFromTheRESTRequest() throws {
        let folder = Shared.root.appendingPathComponent("corpus-sample/tests/integration/responses/recordings").path
        var checked = 0
        for name in try FileManager.default.contentsOfDirectory(atPath: folder).sorted() where name.hasSuffix(".json") {
            let recording = try Recording(contentsOfFile: "\(folder)/\(name)")
            guard recording.url?.hasPrefix("vertexai:///") == true, let body = recording.request["body"] else {
                continue
            }
            var rest = JSONObject()
            rest["contents"] = GeminiKeyCase.camel(body["contents"] ?? [])
            for (key, value) in body["config"]?.objectValue?.members ?? JSONObject().members {
                rest[GeminiKeyCase.camel(key: key)] = GeminiKeyCase.camel(value)
            }
            let model = try #require(body["model"]?.stringValue)
            let method =
                recording.request["endpoint"] == "/generate_content_stream"
                ? "streamGenerateContent" : "generateContent"
            let exchange = try adapter.prepare(
                request("/v1beta1/\(model):\(method)", body: .object(rest), testID: recording.testID)
            )
            #expect(exchange.hash + ".json" == name)
            checked += 1
        }
        #expect(checked == 6)
    }
}
