import PythonJSON

/// What a client would have seen from a recorded response: the assembled text and tool calls.
///
/// Streams are joined the way SDKs join them: text deltas concatenated, tool-call argument
/// deltas concatenated per tool-call index. It understands OpenAI chat and completions chunks,
/// Responses API events, Ollama chunks, Gemini chunks and raw SSE lines (Anthropic Messages,
/// Gemini interactions); other shapes give an empty transcript.
public struct Transcript: Sendable, Equatable {
    /// One tool call, assembled.
    public struct ToolCall: Sendable, Equatable {
        public var index: Int
        public var id: String?
        public var name: String
        public var arguments: String
    }

    public var text: String = ""
    public var toolCalls: [ToolCall] = []

    public init(text: String = "", toolCalls: [ToolCall] = []) {
        self.text = text
        self.toolCalls = toolCalls
    }

    /// Assembles the transcript of a recording's response.
    public init(_ recording: Recording) {
        var builder = Builder()
        if let chunks = recording.chunks {
            let events: [JSONValue]
            if chunks.allSatisfy({ $0.stringValue != nil }) {
                events = Self.sseEvents(chunks.compactMap(\.stringValue))
            } else {
                events = chunks
            }
            for event in events { builder.add(ResponseNormalization.untyped(event)) }
        } else {
            builder.add(ResponseNormalization.untyped(recording.body))
        }
        self = builder.transcript
    }

    /// The JSON payloads of the `data:` lines of an SSE stream (`[DONE]` and non-JSON skipped).
    static func sseEvents(_ lines: [String]) -> [JSONValue] {
        lines.compactMap { line in
            guard line.hasPrefix("data:") else { return nil }
            let payload = line.dropFirst(5).drop(while: { $0 == " " })
            return try? JSONValue(parsing: String(payload))
        }
    }

    private struct Builder {
        var text = ""
        var calls: [Int: ToolCall] = [:]

        var transcript: Transcript {
            Transcript(text: text, toolCalls: calls.keys.sorted().map { calls[$0]! })
        }

        mutating func call(_ index: Int, id: String?, name: String?, arguments: String?) {
            var entry = calls[index] ?? ToolCall(index: index, id: nil, name: "", arguments: "")
            if let id, !id.isEmpty { entry.id = id }
            if let name, !name.isEmpty { entry.name += name }
            if let arguments { entry.arguments += arguments }
            calls[index] = entry
        }

        mutating func add(_ event: JSONValue) {
            guard case .object(let object) = event else { return }
            // OpenAI chat completions and completions (chunks or whole objects).
            if case .array(let choices)? = object["choices"] {
                for choice in choices where (choice["index"]?.intValue ?? 0) == 0 {
                    let message = choice["delta"] ?? choice["message"]
                    if let content = message?["content"]?.stringValue { text += content }
                    if let piece = choice["text"]?.stringValue { text += piece }
                    for (position, toolCall) in (message?["tool_calls"]?.arrayValue ?? []).enumerated() {
                        call(
                            toolCall["index"]?.intValue ?? position,
                            id: toolCall["id"]?.stringValue,
                            name: toolCall["function"]?["name"]?.stringValue,
                            arguments: toolCall["function"]?["arguments"]?.stringValue
                        )
                    }
                }
                return
            }
            // Ollama chat and generate.
            if case .object(let message)? = object["message"] {
                if let content = message["content"]?.stringValue { text += content }
                for toolCall in message["tool_calls"]?.arrayValue ?? [] {
                    let arguments = toolCall["function"]?["arguments"].map {
                        String(decoding: $0.compactBytes(), as: UTF8.self)
                    }
                    call(calls.count, id: nil, name: toolCall["function"]?["name"]?.stringValue, arguments: arguments)
                }
                return
            }
            if let piece = object["response"]?.stringValue {
                text += piece
                return
            }
            // Gemini generateContent chunks.
            if case .array(let candidates)? = object["candidates"] {
                for part in candidates.first?["content"]?["parts"]?.arrayValue ?? [] {
                    if let piece = part["text"]?.stringValue { text += piece }
                    if let function = part["function_call"] ?? part["functionCall"] {
                        let arguments = function["args"].map { String(decoding: $0.compactBytes(), as: UTF8.self) }
                        call(
                            calls.count,
                            id: function["id"]?.stringValue,
                            name: function["name"]?.stringValue,
                            arguments: arguments
                        )
                    }
                }
                return
            }
            addTypedEvent(object)
        }

        /// Events that name their type: Responses API, Anthropic Messages, Gemini interactions.
        mutating func addTypedEvent(_ object: JSONObject) {
            let type = object["type"]?.stringValue ?? object["event_type"]?.stringValue ?? ""
            let index = object["index"]?.intValue ?? object["output_index"]?.intValue ?? 0
            switch type {
            case "response.output_text.delta":
                text += object["delta"]?.stringValue ?? ""
            case "response.output_item.added":
                if object["item"]?["type"]?.stringValue == "function_call" {
                    call(
                        index,
                        id: object["item"]?["call_id"]?.stringValue,
                        name: object["item"]?["name"]?.stringValue,
                        arguments: nil
                    )
                }
            case "response.function_call_arguments.delta":
                call(index, id: nil, name: nil, arguments: object["delta"]?.stringValue)
            case "content_block_start":
                if object["content_block"]?["type"]?.stringValue == "tool_use" {
                    call(
                        index,
                        id: object["content_block"]?["id"]?.stringValue,
                        name: object["content_block"]?["name"]?.stringValue,
                        arguments: nil
                    )
                }
                if let piece = object["content_block"]?["text"]?.stringValue { text += piece }
            case "content_block_delta", "content.delta":
                let delta = object["delta"]
                if let piece = delta?["text"]?.stringValue { text += piece }
                if let partial = delta?["partial_json"]?.stringValue {
                    call(index, id: nil, name: nil, arguments: partial)
                }
            case "message":
                // A whole Anthropic message.
                for (position, block) in (object["content"]?.arrayValue ?? []).enumerated() {
                    if let piece = block["text"]?.stringValue { text += piece }
                    if block["type"]?.stringValue == "tool_use" {
                        let arguments = block["input"].map { String(decoding: $0.compactBytes(), as: UTF8.self) }
                        call(
                            position,
                            id: block["id"]?.stringValue,
                            name: block["name"]?.stringValue,
                            arguments: arguments
                        )
                    }
                }
            default:
                break
            }
        }
    }
}
