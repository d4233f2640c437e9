import Foundation
import Logging

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

extension ExchangePipeline {
    /// A tool call through the pipeline: the same decision, single flight, counting and store
    /// rules as an HTTP exchange; the "upstream" is the tool function itself.
    ///
    /// Identified as the reference identifies tool invocations: provider, tool name and arguments
    /// (no test id in the hash; the test id decides the folder).
    /// - Throws: ``RecorderError`` for a replay miss or a recording that could not be saved; the
    ///   call's own error when recording (it is recorded); ``RecordedToolError`` when replaying a
    ///   recorded error.
    package func invokeTool(
        provider: String,
        name: String,
        arguments: JSONValue,
        testID: String?,
        typeName: String?,
        _ call: () async throws -> JSONValue
    ) async throws -> JSONValue {
        let identity = RequestIdentity.tool(provider: .string(provider), toolName: .string(name), kwargs: arguments)
        let request = RecorderRequest(
            identity: identity,
            testID: testID,
            summary: RequestSummary(method: "TOOL", url: "\(provider).\(name)", model: nil)
        )
        let decision: RecorderDecision
        do {
            decision = try await recorder.decide(request)
        } catch {
            recorder.note(
                error.code == .recordingNotFound
                    ? .missed(MissedRequest(request, diagnosis: error.diagnosis)) : .failed(storeFailure: nil),
                testID: testID
            )
            logger.warning(
                "tool call refused",
                metadata: ["tool": "\(provider).\(name)", "reason": "\(error.message)"]
            )
            throw error
        }
        switch decision {
        case .answerLocally:
            // Only unrecordable exchanges are answered locally, and tool calls are always recorded.
            throw RecorderError(code: .recordingNotFound, message: "No recording for tool \(provider).\(name).")
        case .shareFailure(let failure):
            recorder.note(.failed(storeFailure: nil), testID: testID)
            throw failure
        case .replay(let hit):
            guard hit.recording.kind == .toolInvocation else {
                recorder.note(.failed(storeFailure: nil), testID: testID)
                throw RecorderError(
                    code: .corruptRecording,
                    message: "\(hit.path): corrupt recording: it is not a tool invocation"
                )
            }
            recorder.note(.replayed(paths: hit.paths), testID: testID)
            if let exception = hit.recording.exception {
                throw RecordedToolError(type: exception.type ?? "Error", message: exception.message ?? "")
            }
            return ResponseNormalization.untyped(hit.recording.body)
        case .passThrough:
            recorder.note(.passedThrough, testID: testID)
            return try await call()
        case .record(let lease):
            let result: Result<JSONValue, any Error>
            let outcome: RecordedOutcome
            do {
                let value = try await call()
                result = .success(value)
                outcome = .body(typeName.map { ["__type__": .string($0), "__data__": value] } ?? value)
            } catch {
                result = .failure(error)
                outcome = .exception(
                    RecordedException(
                        category: "builtin",
                        provider: provider,
                        type: String(describing: Swift.type(of: error)),
                        message: String(describing: error),
                        statusCode: nil,
                        body: nil
                    )
                )
            }
            let recording = Recording.toolInvocation(
                testID: testID,
                provider: provider,
                toolName: name,
                kwargs: arguments,
                outcome: outcome
            )
            do {
                let path = try recorder.record(recording, for: request)
                lease?.succeed()
                recorder.note(.recorded(path: path), testID: testID)
            } catch {
                lease?.fail(error)
                recorder.note(.failed(storeFailure: error.message), testID: testID)
                throw error
            }
            return try result.get()
        }
    }
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
    /// - Throws: ``RecorderError`` for a replay miss or a recording that could not be saved; the
    ///   call's own error when recording (it is recorded); ``RecordedToolError`` when replaying a
    ///   recorded error.
    public func invokeTool(
        provider: String,
        name: String,
        arguments: JSONValue,
        testID: String?,
        typeName: String? = nil,
        _ call: () async throws -> JSONValue
    ) async throws -> JSONValue {
        try await ExchangePipeline(recorder: self).invokeTool(
            provider: provider,
            name: name,
            arguments: arguments,
            testID: testID,
            typeName: typeName,
            call
        )
    }

    /// ``invokeTool(provider:name:arguments:testID:typeName:_:)`` for `Codable` arguments and results.
    public func invokeTool<Arguments: Encodable, Output: Codable>(
        provider: String,
        name: String,
        arguments: Arguments,
        testID: String?,
        typeName: String? = nil,
        _ call: () async throws -> Output
    ) async throws -> Output {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let argumentsJSON = try JSONValue(parsing: [UInt8](encoder.encode(arguments)))
        let value = try await invokeTool(
            provider: provider,
            name: name,
            arguments: argumentsJSON,
            testID: testID,
            typeName: typeName
        ) {
            try JSONValue(parsing: [UInt8](encoder.encode(try await call())))
        }
        return try JSONDecoder().decode(Output.self, from: Data(value.compactBytes()))
    }
}
