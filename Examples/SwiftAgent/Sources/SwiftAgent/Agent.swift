import Foundation

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A small agent over an OpenAI-compatible chat endpoint (`POST {baseURL}/chat/completions`).
///
/// Every request goes through the `URLSession` it is given, so tests can hand it a session that
/// records and replays (APIRecorderTesting's `RecordingScope.current!.urlSession()`), and
/// production code `URLSession.shared` or one of its own.
///
/// ```swift
/// let agent = Agent(baseURL: URL(string: "http://127.0.0.1:8080/v1")!, model: "gemma-3-270m")
/// let answer = try await agent.ask("What is the capital of France?")
/// ```
public struct Agent: Sendable {
    public var baseURL: URL
    public var model: String
    /// Sent as `Authorization: Bearer ...` when set.
    public var apiKey: String?
    public var session: URLSession
    /// The `web_search` tool of ``answerWithTools(_:)``.
    public var webSearch: WebSearch?
    public var temperature: Double?
    public var maxTokens: Int?

    public init(
        baseURL: URL,
        model: String,
        apiKey: String? = nil,
        session: URLSession = .shared,
        webSearch: WebSearch? = nil,
        temperature: Double? = 0,
        maxTokens: Int? = nil
    ) {
        self.baseURL = baseURL
        self.model = model
        self.apiKey = apiKey
        self.session = session
        self.webSearch = webSearch
        self.temperature = temperature
        self.maxTokens = maxTokens
    }

    // MARK: Asking

    /// The model's answer to `question`, in one piece.
    public func ask(_ question: String) async throws -> String {
        let message = try await complete(request(messages: [.user(question)]))
        return message.content ?? ""
    }

    /// The model's answer to `question`, piece by piece as it is generated (a streamed
    /// completion, `"stream": true`): each element is one content delta.
    public func stream(_ question: String) -> AsyncThrowingStream<String, any Error> {
        var body = request(messages: [.user(question)])
        body.stream = true
        let urlRequest: URLRequest
        do {
            urlRequest = try self.urlRequest(body)
        } catch {
            return AsyncThrowingStream { $0.finish(throwing: error) }
        }
        let events = EventStream.events(of: urlRequest, configuration: session.configuration)
        return AsyncThrowingStream { continuation in
            let pump = Task {
                do {
                    for try await event in events {
                        if event == "[DONE]" { break }
                        let chunk = try JSONDecoder().decode(ChatChunk.self, from: Data(event.utf8))
                        if let content = chunk.choices.first?.delta.content, !content.isEmpty {
                            continuation.yield(content)
                        }
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in pump.cancel() }
        }
    }

    // MARK: Tools

    /// The answer to `question` after the model has searched the web for it (see ``runWithTools(_:maxToolRounds:)``).
    public func answerWithTools(_ question: String) async throws -> String {
        try await runWithTools(question).answer
    }

    /// A tool-call loop: the model is offered the `web_search` tool and must call it on the first
    /// turn (`tool_choice: "required"`); each call is run and its results sent back as a `tool`
    /// message, and the model may search again (`"auto"`) for up to `maxToolRounds` rounds. The
    /// last turn offers no tools, so the loop always ends with an answer.
    ///
    /// Small models do not always fill the arguments in: a call without a usable `query`
    /// searches for the question itself, and the conversation records the query that ran.
    public func runWithTools(_ question: String, maxToolRounds: Int = 2) async throws -> ToolRun {
        guard let webSearch else { throw AgentError.noWebSearch }
        var messages: [ChatMessage] = [.user(question)]
        var searches: [ToolRun.Search] = []
        for round in 0...max(maxToolRounds, 1) {
            var body = request(messages: messages)
            if round < max(maxToolRounds, 1) {
                body.tools = [WebSearch.definition]
                body.toolChoice = round == 0 ? "required" : "auto"
                body.parallelToolCalls = false
            }
            let reply = try await complete(body)
            guard let calls = reply.toolCalls, !calls.isEmpty, body.tools != nil else {
                messages.append(reply)
                return ToolRun(answer: reply.content ?? "", searches: searches, messages: messages)
            }
            var executed: [ToolCall] = []
            var results: [ChatMessage] = []
            for call in calls {
                guard call.function.name == "web_search" else { throw AgentError.unknownTool(call.function.name) }
                let query = Self.query(in: call.function.arguments) ?? question
                let hits = try await webSearch.search(query: query)
                searches.append(ToolRun.Search(query: query, hits: hits))
                let arguments = String(decoding: try JSONEncoder.sorted.encode(["query": query]), as: UTF8.self)
                executed.append(ToolCall(id: call.id, function: .init(name: call.function.name, arguments: arguments)))
                results.append(ChatMessage(role: "tool", content: WebSearch.render(hits), toolCallID: call.id))
            }
            messages.append(ChatMessage(role: "assistant", content: reply.content, toolCalls: executed))
            messages += results
        }
        // Not reached: the last round offers no tools, so it returns above.
        throw AgentError.noAnswer
    }

    /// The `query` argument of a call, if the model wrote one.
    static func query(in arguments: String) -> String? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(arguments.utf8)) as? [String: Any],
            let query = object["query"] as? String
        else { return nil }
        let trimmed = query.trimmingCharacters(in: .whitespacesAndNewlines)
        return trimmed.isEmpty ? nil : trimmed
    }

    // MARK: HTTP

    func request(messages: [ChatMessage]) -> ChatRequest {
        ChatRequest(model: model, messages: messages, temperature: temperature, maxTokens: maxTokens)
    }

    func urlRequest(_ body: ChatRequest) throws -> URLRequest {
        var request = URLRequest(url: baseURL.appendingPathComponent("chat/completions"))
        request.httpMethod = "POST"
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        if body.stream == true { request.setValue("text/event-stream", forHTTPHeaderField: "Accept") }
        if let apiKey { request.setValue("Bearer \(apiKey)", forHTTPHeaderField: "Authorization") }
        request.httpBody = try JSONEncoder.sorted.encode(body)
        return request
    }

    /// The first choice's message of a whole completion.
    func complete(_ body: ChatRequest) async throws -> ChatMessage {
        let (data, response) = try await session.data(for: urlRequest(body))
        if let http = response as? HTTPURLResponse, !(200..<300).contains(http.statusCode) {
            throw HTTPStatusError(status: http.statusCode, body: String(decoding: data, as: UTF8.self))
        }
        guard let choice = try JSONDecoder().decode(ChatResponse.self, from: data).choices.first else {
            throw AgentError.noAnswer
        }
        return choice.message
    }
}

/// What a tool-call loop did.
public struct ToolRun: Sendable {
    /// The model's final answer.
    public var answer: String
    /// Every search that ran, in order.
    public var searches: [Search]
    /// The whole conversation, the final answer last.
    public var messages: [ChatMessage]

    public struct Search: Sendable, Equatable {
        public var query: String
        public var hits: [SearchHit]
    }
}

public enum AgentError: Error, Equatable {
    /// The completion had no choices.
    case noAnswer
    /// The model called a tool the agent does not have.
    case unknownTool(String)
    /// ``Agent/runWithTools(_:maxToolRounds:)`` needs ``Agent/webSearch``.
    case noWebSearch
}
