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

/// What one run of a tool did, as the pipeline records it.
package enum ToolCallOutcome: Sendable {
    /// The tool's result, as JSON.
    case returned(JSONValue)
    /// The error the tool raised (recorded, and re-raised by replays).
    case raised(RecordedException)
}

/// A tool call's answer: the result a replay gives, and how it was obtained.
package struct ToolAnswer: Sendable {
    package enum Source: Sendable, Equatable {
        case replayed(path: String)
        case recorded(path: String)
        /// Live mode: run, not recorded.
        case passedThrough
    }

    package var source: Source
    /// The result as a replay gives it (a typed result's `__data__`), or the recorded error.
    package var result: Result<JSONValue, RecordedToolError>
    /// A typed result's `__type__` (`ogx_api.tools.ToolInvocationResult`), `nil` for plain JSON.
    package var typeName: String?
}

extension ExchangePipeline {
    /// A tool call through the pipeline: the same decision, single flight, counting and store
    /// rules as an HTTP exchange; the "upstream" is the tool function itself, wherever it runs (in
    /// this process, or in a client of the proxy's tool endpoint).
    ///
    /// Identified as the reference identifies tool invocations: provider, tool name and arguments
    /// (no test id in the hash; the test id decides the folder). String arguments under credential
    /// names are left out of the identity and the recording, as in request bodies.
    /// - Parameter call: runs the tool. Throwing (rather than returning `.raised`) means the call
    ///   never finished (a client that went away): nothing is recorded, and identical calls
    ///   waiting on this one fail too.
    /// - Throws: ``RecorderError`` for a replay miss or a recording that could not be saved;
    ///   `call`'s own error.
    package func invokeTool(
        provider: String,
        name: String,
        arguments: JSONValue,
        testID: String?,
        typeName: String?,
        _ call: () async throws -> ToolCallOutcome
    ) async throws -> ToolAnswer {
        let arguments = SecretRedaction().redacting(arguments)
        let identity = RequestIdentity.tool(provider: .string(provider), toolName: .string(name), kwargs: arguments)
        let request = RecorderRequest(
            identity: identity,
            testID: testID,
            summary: RequestSummary(method: "TOOL", url: "\(provider).\(name)", model: nil)
        )
        let started = ContinuousClock.now
        var entry = JournalEntry(
            time: Date(),
            testID: testID,
            method: "TOOL",
            path: "\(provider).\(name)",
            route: nil,
            hash: request.hash,
            outcome: .error,
            status: 0,
            durationMilliseconds: 0,
            fault: nil
        )
        defer {
            entry.durationMilliseconds = (ContinuousClock.now - started).milliseconds
            recorder.journal.append(entry)
        }
        do {
            let answer = try await invokeTool(
                request,
                provider: provider,
                name: name,
                arguments: arguments,
                typeName: typeName,
                call
            )
            switch answer.source {
            case .replayed: entry.outcome = .replayed
            case .recorded: entry.outcome = .recorded
            case .passedThrough: entry.outcome = .passedThrough
            }
            return answer
        } catch let error as RecorderError where error.code == .recordingNotFound {
            entry.outcome = .missed
            throw error
        }
    }

    private func invokeTool(
        _ request: RecorderRequest,
        provider: String,
        name: String,
        arguments: JSONValue,
        typeName: String?,
        _ call: () async throws -> ToolCallOutcome
    ) async throws -> ToolAnswer {
        let testID = request.testID
        let metadata: Logger.Metadata = ["tool": "\(provider).\(name)", "test_id": "\(testID ?? "none")"]
        let decision: RecorderDecision
        do {
            decision = try await recorder.decide(request)
        } catch {
            recorder.note(
                error.code == .recordingNotFound
                    ? .missed(MissedRequest(request, diagnosis: error.diagnosis)) : .failed(storeFailure: nil),
                testID: testID
            )
            logger.warning("tool call refused", metadata: metadata.merging(["reason": "\(error.message)"]) { $1 })
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
            logger.info("tool call replayed", metadata: metadata.merging(["path": "\(hit.path)"]) { $1 })
            return Self.answer(hit.recording, source: .replayed(path: hit.path))
        case .passThrough:
            let outcome: ToolCallOutcome
            do {
                outcome = try await call()
            } catch {
                recorder.note(.failed(storeFailure: nil), testID: testID)
                throw error
            }
            recorder.note(.passedThrough, testID: testID)
            switch outcome {
            case .returned(let value):
                return ToolAnswer(source: .passedThrough, result: .success(value), typeName: typeName)
            case .raised(let exception):
                return ToolAnswer(
                    source: .passedThrough,
                    result: .failure(RecordedToolError(exception)),
                    typeName: typeName
                )
            }
        case .record(let lease):
            let outcome: ToolCallOutcome
            do {
                outcome = try await call()
            } catch {
                lease?.fail(error)
                recorder.note(.failed(storeFailure: nil), testID: testID)
                logger.warning(
                    "tool call abandoned",
                    metadata: metadata.merging(["reason": "\(error)"]) { $1 }
                )
                throw error
            }
            let recorded: RecordedOutcome
            switch outcome {
            case .returned(let value):
                recorded = .body(typeName.map { ["__type__": .string($0), "__data__": value] } ?? value)
            case .raised(let exception):
                recorded = .exception(exception)
            }
            let recording = Recording.toolInvocation(
                testID: testID,
                provider: provider,
                toolName: name,
                kwargs: arguments,
                outcome: recorded
            )
            let path: String
            do {
                path = try recorder.record(recording, for: request)
            } catch {
                lease?.fail(error)
                recorder.note(.failed(storeFailure: error.message), testID: testID)
                throw error
            }
            lease?.succeed()
            recorder.note(.recorded(path: path), testID: testID)
            logger.info("tool call recorded", metadata: metadata.merging(["path": "\(path)"]) { $1 })
            return Self.answer(recording, source: .recorded(path: path))
        }
    }

    /// The answer a tool recording gives.
    private static func answer(_ recording: Recording, source: ToolAnswer.Source) -> ToolAnswer {
        if let exception = recording.exception {
            return ToolAnswer(source: source, result: .failure(RecordedToolError(exception)), typeName: nil)
        }
        let body = recording.body
        let typeName = body["__type__"]?.stringValue
        return ToolAnswer(source: source, result: .success(ResponseNormalization.untyped(body)), typeName: typeName)
    }
}

extension RecordedToolError {
    /// The error a recording holds.
    init(_ exception: RecordedException) {
        self.init(type: exception.type ?? "Error", message: exception.message ?? "")
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
        // The live error itself, for the caller of a recording run; replays throw RecordedToolError.
        var liveError: (any Error)?
        let answer = try await ExchangePipeline(recorder: self).invokeTool(
            provider: provider,
            name: name,
            arguments: arguments,
            testID: testID,
            typeName: typeName
        ) {
            do {
                return .returned(try await call())
            } catch {
                liveError = error
                return .raised(
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
        }
        switch answer.result {
        case .success(let value): return value
        case .failure(let recorded): throw liveError ?? recorded
        }
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
