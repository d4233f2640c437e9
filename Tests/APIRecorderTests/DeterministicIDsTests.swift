import Foundation
import Synchronization
import TestSupport
import Testing

@testable import APIRecorder

/// Ids an upstream issues and a client sends back are made deterministic when recording, so that a
/// tool loop re-recorded writes the same files; the upstream still gets back the ids it issued.
@Suite("Deterministic ids")
struct DeterministicIDsTests {
    static func random(_ prefix: String) -> String {
        prefix + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
    }

    /// A Responses API upstream: a function call with fresh ids, whole or as events.
    static func responsesUpstream() -> ScriptedTransport {
        ScriptedTransport { request in
            let (response, item, call) = (random("resp_"), random("fc_"), random("call_"))
            let body = try? JSONValue(parsing: request.body)
            if body?["stream"]?.boolValue == true {
                let events = [
                    #"{"type":"response.created","response":{"id":"\#(response)","output":[]}}"#,
                    #"{"type":"response.output_item.added","output_index":0,"item":{"type":"function_call","id":"\#(item)","call_id":"\#(call)","name":"weather","arguments":""}}"#,
                    #"{"type":"response.function_call_arguments.delta","item_id":"\#(item)","output_index":0,"delta":"{}"}"#,
                    #"{"type":"response.completed","response":{"id":"\#(response)","output":[{"type":"function_call","id":"\#(item)","call_id":"\#(call)","name":"weather","arguments":"{}"}]}}"#,
                ]
                return .response(
                    status: 200,
                    contentType: "text/event-stream",
                    chunks: events.map { sse($0, event: (try? JSONValue(parsing: $0))?["type"]?.stringValue) }
                )
            }
            let output =
                #"{"id":"\#(response)","object":"response","output":[{"type":"function_call","id":"\#(item)","call_id":"\#(call)","name":"weather","arguments":"{}"},{"type":"message","id":"\#(random("msg_"))","content":[]}]}"#
            return .response(status: 200, contentType: "application/json", chunks: [Array(output.utf8)])
        }
    }

    /// Turn two of a tool loop: the first answer's output, and the tool's result.
    static func secondTurn(after first: JSONValue) -> JSONValue {
        let output = first["output"]?.arrayValue ?? []
        let call = output.first { $0["type"] == "function_call" }
        return [
            "model": "m",
            "input": .array(
                [["role": "user", "content": "weather?"]] + output + [
                    ["type": "function_call_output", "call_id": call?["call_id"] ?? nil, "output": "sunny"]
                ]
            ),
        ]
    }

    /// Records the two-turn loop in a fresh root; returns its file names and the upstream.
    static func recordLoop(
        stream: Bool
    ) async throws -> (files: [String], client: [JSONValue], upstream: ScriptedTransport) {
        let upstream = responsesUpstream()
        let harness = try PipelineHarness(transport: upstream)
        let pipeline = harness.pipeline(.record)
        let first: JSONValue = [
            "model": "m", "input": [["role": "user", "content": "weather?"]], "stream": .bool(stream),
        ]
        let answer = await harness.send(
            exchangeRequest("/responses", body: first),
            adapter: OpenAIAdapter(),
            mode: .record,
            pipeline: pipeline
        )
        let firstResponse: JSONValue
        if stream {
            let completed = answer.text.split(separator: "\n").compactMap { line -> JSONValue? in
                guard line.hasPrefix("data: ") else { return nil }
                return try? JSONValue(parsing: String(line.dropFirst(6)))
            }.last { $0["type"] == "response.completed" }
            firstResponse = completed?["response"] ?? nil
        } else {
            firstResponse = answer.json ?? nil
        }
        let second = await harness.send(
            exchangeRequest("/responses", body: secondTurn(after: firstResponse)),
            adapter: OpenAIAdapter(),
            mode: .record,
            pipeline: pipeline
        )
        #expect(second.status == 200)
        return (harness.recordings, [firstResponse], upstream)
    }

    @Test(arguments: [false, true])
    func aResponsesToolLoopReRecordsToTheSameFiles(_ stream: Bool) async throws {
        let one = try await Self.recordLoop(stream: stream)
        let two = try await Self.recordLoop(stream: stream)
        #expect(one.files.count == 2)
        #expect(one.files == two.files, "the second turn hashes the same when the first turn's ids are deterministic")

        // The client saw deterministic ids; the response's own id (the upstream's state) is kept.
        let item = try #require(one.client[0]["output"]?.arrayValue?.first)
        let callID = try #require(item["call_id"]?.stringValue)
        #expect(callID == two.client[0]["output"]?.arrayValue?.first?["call_id"]?.stringValue)
        #expect(item["id"]?.stringValue?.hasPrefix("fc_") == true && callID.hasPrefix("call_"))
        #expect(one.client[0]["id"] != two.client[0]["id"])

        // The upstream was sent back the ids it issued, not the deterministic ones.
        let sent = one.upstream.requests.withLock { $0 }
        let second = String(decoding: sent[1].body, as: UTF8.self)
        #expect(!second.contains(callID), "\(second)")
        #expect(second.contains("\"call_") && second.contains("\"fc_"))
    }

    @Test(arguments: [false, true])
    func anAnthropicToolLoopReRecordsToTheSameFiles(_ stream: Bool) async throws {
        let issued = Mutex<[String]>([])
        func upstream() -> ScriptedTransport {
            ScriptedTransport { request in
                // Anthropic issues `toolu_...`; compatible servers (llama-server) ids without a prefix.
                let id = Self.random(stream ? "" : "toolu_")
                issued.withLock { $0.append(id) }
                if (try? JSONValue(parsing: request.body))?["stream"]?.boolValue == true {
                    let lines = [
                        "event: content_block_start\n",
                        #"data: {"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"\#(id)","name":"weather","input":{}}}"#
                            + "\n\n",
                        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
                    ]
                    return .response(
                        status: 200,
                        contentType: "text/event-stream",
                        chunks: lines.map { Array($0.utf8) }
                    )
                }
                let body =
                    #"{"id":"msg_1","type":"message","role":"assistant","content":[{"type":"tool_use","id":"\#(id)","name":"weather","input":{}}]}"#
                return .response(status: 200, contentType: "application/json", chunks: [Array(body.utf8)])
            }
        }
        func loop() async throws -> (files: [String], id: String, sent: [UpstreamRequest]) {
            let transport = upstream()
            let harness = try PipelineHarness(transport: transport)
            let pipeline = harness.pipeline(.record)
            let first: JSONValue = [
                "model": "m", "max_tokens": 16, "messages": [["role": "user", "content": "weather?"]],
                "stream": .bool(stream),
            ]
            let answer = await harness.send(
                exchangeRequest("/v1/messages", body: first, base: "https://api.anthropic.test"),
                adapter: PlainHTTPAdapter(),
                mode: .record,
                pipeline: pipeline
            )
            let id = try #require(
                answer.text.firstRange(of: "toolu_").map { range in
                    String(answer.text[range.lowerBound...].prefix { $0 != "\"" })
                }
            )
            let second: JSONValue = [
                "model": "m", "max_tokens": 16,
                "messages": [
                    ["role": "user", "content": "weather?"],
                    [
                        "role": "assistant",
                        "content": [["type": "tool_use", "id": .string(id), "name": "weather", "input": [:]]],
                    ],
                    [
                        "role": "user",
                        "content": [["type": "tool_result", "tool_use_id": .string(id), "content": "sunny"]],
                    ],
                ],
            ]
            _ = await harness.send(
                exchangeRequest("/v1/messages", body: second, base: "https://api.anthropic.test"),
                adapter: PlainHTTPAdapter(),
                mode: .record,
                pipeline: pipeline
            )
            return (harness.recordings, id, transport.requests.withLock { $0 })
        }
        let one = try await loop()
        let two = try await loop()
        #expect(one.files.count == 2 && one.files == two.files)
        #expect(one.id == two.id)
        let sentBack = String(decoding: one.sent[1].body, as: UTF8.self)
        #expect(!sentBack.contains(one.id) && sentBack.contains("\"\(issued.withLock { $0[0] })\""), "\(sentBack)")
        #expect(one.id.hasPrefix("toolu_"))
    }
}
