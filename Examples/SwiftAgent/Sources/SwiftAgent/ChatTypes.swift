import Foundation

// The parts of the OpenAI chat-completions wire format that the agent uses.

/// One message of a conversation.
public struct ChatMessage: Codable, Sendable, Equatable {
    public var role: String
    public var content: String?
    /// The tools an assistant message calls.
    public var toolCalls: [ToolCall]?
    /// The call a `tool` message answers.
    public var toolCallID: String?

    public init(role: String, content: String?, toolCalls: [ToolCall]? = nil, toolCallID: String? = nil) {
        self.role = role
        self.content = content
        self.toolCalls = toolCalls
        self.toolCallID = toolCallID
    }

    public static func system(_ content: String) -> ChatMessage { ChatMessage(role: "system", content: content) }
    public static func user(_ content: String) -> ChatMessage { ChatMessage(role: "user", content: content) }

    enum CodingKeys: String, CodingKey {
        case role, content
        case toolCalls = "tool_calls"
        case toolCallID = "tool_call_id"
    }
}

/// A tool call requested by the model.
public struct ToolCall: Codable, Sendable, Equatable {
    public var id: String
    public var type: String
    public var function: FunctionCall

    public init(id: String, type: String = "function", function: FunctionCall) {
        self.id = id
        self.type = type
        self.function = function
    }

    public struct FunctionCall: Codable, Sendable, Equatable {
        public var name: String
        /// The arguments as the model wrote them: a JSON object, as text (not always valid).
        public var arguments: String

        public init(name: String, arguments: String) {
            self.name = name
            self.arguments = arguments
        }
    }
}

/// A function the model may call, in the `tools` format.
public struct ToolDefinition: Encodable, Sendable {
    public var type = "function"
    public var function: Function

    public struct Function: Encodable, Sendable {
        public var name: String
        public var description: String
        public var parameters: JSONSchema
    }

    public init(name: String, description: String, parameters: JSONSchema) {
        function = Function(name: name, description: description, parameters: parameters)
    }
}

/// The small JSON Schema subset that tool parameters need: an object of string properties.
public struct JSONSchema: Encodable, Sendable {
    public var type = "object"
    public var properties: [String: Property]
    public var required: [String]

    public struct Property: Encodable, Sendable {
        public var type: String
        public var description: String
    }

    public init(properties: [String: Property], required: [String]) {
        self.properties = properties
        self.required = required
    }
}

/// A `/chat/completions` request body.
struct ChatRequest: Encodable {
    var model: String
    var messages: [ChatMessage]
    var temperature: Double?
    var maxTokens: Int?
    var stream: Bool?
    var tools: [ToolDefinition]?
    var toolChoice: String?
    var parallelToolCalls: Bool?

    enum CodingKeys: String, CodingKey {
        case model, messages, temperature, stream, tools
        case maxTokens = "max_tokens"
        case toolChoice = "tool_choice"
        case parallelToolCalls = "parallel_tool_calls"
    }
}

/// A whole (non-streamed) chat completion.
struct ChatResponse: Decodable {
    var choices: [Choice]

    struct Choice: Decodable {
        var message: ChatMessage
        var finishReason: String?

        enum CodingKeys: String, CodingKey {
            case message
            case finishReason = "finish_reason"
        }
    }
}

/// One `data:` event of a streamed chat completion.
struct ChatChunk: Decodable {
    var choices: [Choice]

    struct Choice: Decodable {
        var delta: Delta
    }

    struct Delta: Decodable {
        var content: String?
    }
}

extension JSONEncoder {
    /// An encoder whose output does not vary from run to run: keys in sorted order (the
    /// default order of Foundation's encoder is not stable), so request bodies, and the
    /// recordings made of them, stay the same when nothing changed.
    static var sorted: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
}
