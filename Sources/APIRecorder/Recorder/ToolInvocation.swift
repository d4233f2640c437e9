import Foundation

/// An error a recorded tool call threw, re-thrown on replay with its type name and message.
public struct RecordedToolError: Error, Sendable, CustomStringConvertible, Equatable {
    /// The Swift (or, for reference recordings, Python) type name of the original error.
    public let type: String
    public let message: String

    public init(type: String, message: String) {
        self.type = type
        self.message = message
    }

    public var description: String { "\(type): \(message)" }
}

extension Recorder {
    /// Records or replays one call of a tool function (a web search, a database query, anything
    /// async), identified by provider, tool name and arguments, as the reference identifies tool
    /// invocations (no test id in the hash; the test id decides the folder).
    ///
    /// ```swift
    /// let result = try await recorder.invokeTool(
    ///     provider: "tavily", name: "web_search", arguments: ["query": "Paris weather"], testID: testID
    /// ) { try await realSearch("Paris weather") }
    /// ```
    /// - Parameters:
    ///   - typeName: stored as the result's `__type__` (e.g. `ogx_api.tools.ToolInvocationResult`);
    ///     `nil` stores the result as plain JSON.
    ///   - call: the real tool call; not run when replaying.
    /// - Returns: the result, live or replayed (a typed result's `__data__`).
    /// - Throws: ``RecorderError`` for a replay miss; the call's own error when recording (it is
    ///   recorded); ``RecordedToolError`` when replaying a recorded error.
    public func invokeTool(
        provider: String, name: String, arguments: JSONValue, testID: String?, typeName: String? = nil,
        _ call: () async throws -> JSONValue
    ) async throws -> JSONValue {
        let identity = RequestIdentity.tool(provider: .string(provider), toolName: .string(name), kwargs: arguments)
        let request = RecorderRequest(
            identity: identity, testID: testID, method: "TOOL", url: "\(provider).\(name)", model: nil)
        switch try await decide(request) {
        case .answerLocally:
            // Only unrecordable exchanges are answered locally, and tool calls are always recorded.
            throw RecorderError(code: .recordingNotFound, message: "No recording for tool \(provider).\(name).")
        case .replay(let hit):
            if let exception = hit.recording.exception {
                throw RecordedToolError(type: exception.type ?? "Error", message: exception.message ?? "")
            }
            return ResponseNormalization.untyped(hit.recording.body)
        case .forward(let record, let flight):
            defer { if let flight { Task { await flight.end() } } }
            let outcome: RecordedOutcome
            let result: Result<JSONValue, any Error>
            do {
                let value = try await call()
                result = .success(value)
                let body: JSONValue
                if let typeName {
                    body = ["__type__": .string(typeName), "__data__": value]
                } else {
                    body = value
                }
                outcome = .body(body)
            } catch {
                result = .failure(error)
                outcome = .exception(
                    RecordedException(
                        category: "builtin", provider: provider, type: String(describing: Swift.type(of: error)),
                        message: String(describing: error), statusCode: nil, body: nil))
            }
            if !record { notePassedThrough() }
            if record {
                let recording = Recording.toolInvocation(
                    testID: testID, provider: provider, toolName: name, kwargs: arguments, outcome: outcome)
                try self.record(recording, for: request)
            }
            return try result.get()
        }
    }

    /// ``invokeTool(provider:name:arguments:testID:typeName:_:)`` for `Codable` arguments and results.
    public func invokeTool<Arguments: Encodable, Output: Codable>(
        provider: String, name: String, arguments: Arguments, testID: String?, typeName: String? = nil,
        _ call: () async throws -> Output
    ) async throws -> Output {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let argumentsJSON = try JSONValue(parsing: [UInt8](encoder.encode(arguments)))
        let value = try await invokeTool(
            provider: provider, name: name, arguments: argumentsJSON, testID: testID, typeName: typeName
        ) {
            try JSONValue(parsing: [UInt8](encoder.encode(try await call())))
        }
        return try JSONDecoder().decode(Output.self, from: Data(value.compactBytes()))
    }
}
