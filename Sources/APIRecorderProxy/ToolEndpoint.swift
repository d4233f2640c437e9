import APIRecorder
import Foundation
import Synchronization

/// Tool calls from clients in any language, through the pipeline's one `invokeTool`: the same
/// modes, single flight, counting, report, miss diagnostics and store rules as Swift's
/// `recordedTool`, so the files are the same bytes.
///
/// A call takes one request, or two when the tool must run:
/// 1. `POST /__recorder/tools/invoke` with `{"provider", "tool_name", "kwargs", "test_id"?}`
///    answers a replay (`"outcome": "replayed"`), a miss (404 with the diagnostics), or
///    `{"outcome": "run", "call_id": ...}` in record and live modes: the client runs the tool, then
/// 2. `POST /__recorder/tools/result` with `{"call_id", "result": ...}`, `{"call_id", "error":
///    {"type", "message"}}` (the tool raised) or `{"call_id", "cancelled": true}` (it never
///    finished) answers `"outcome": "recorded"` or `"passed_through"`, with what a replay will give.
///
/// While a call runs, identical calls wait for it (single flight), so a call left open is
/// abandoned after ``timeout``: nothing is recorded and the waiting calls fail.
final class ToolEndpoint: Sendable {
    /// How long a client may take to post a result after being told to run the tool.
    let timeout: Duration
    private let pending = Mutex<[String: PendingToolCall]>([:])

    init(timeout: Duration) {
        self.timeout = timeout
    }

    /// A tool call as a client sends it.
    struct Invocation {
        var provider: String
        var toolName: String
        var kwargs: JSONValue
        var testID: String?
        /// Stored as the result's `__type__` (`ogx_api.tools.ToolInvocationResult`).
        var typeName: String?

        /// - Parameter defaultTestID: the request's own test id (header or current), used when the
        ///   body names none.
        init(json: JSONValue, defaultTestID: String?) throws(ExchangeError) {
            guard case .object = json else {
                throw Self.invalid(#"Send {"provider": ..., "tool_name": ..., "kwargs": {...}}."#)
            }
            guard let provider = json["provider"]?.stringValue, !provider.isEmpty else {
                throw Self.invalid("\"provider\" must be a non-empty string (the tool's provider, e.g. \"tavily\").")
            }
            guard let toolName = json["tool_name"]?.stringValue, !toolName.isEmpty else {
                throw Self.invalid("\"tool_name\" must be a non-empty string (e.g. \"web_search\").")
            }
            let kwargs = json["kwargs"] ?? .object(JSONObject())
            guard case .object = kwargs else {
                throw Self.invalid("\"kwargs\" must be an object of the tool's arguments by name.")
            }
            self.provider = provider
            self.toolName = toolName
            self.kwargs = kwargs
            switch json["test_id"] {
            case .string(let value)?: testID = value
            case .null?: testID = nil
            default: testID = defaultTestID
            }
            typeName = json["type_name"]?.stringValue
        }

        static func invalid(_ message: String) -> ExchangeError {
            ExchangeError(status: 400, type: "invalid_request_error", message: message)
        }
    }

    /// What the tool's client reported.
    private enum Report {
        case finished(ToolCallOutcome)
        case cancelled
    }

    /// The first answer to an invocation: a final one, or "run the tool".
    private enum FirstAnswer {
        case run(callID: String)
        case final(Result<ToolAnswer, any Error>)
    }

    // MARK: Requests

    /// `POST /__recorder/tools/invoke`.
    func invoke(_ invocation: Invocation, pipeline: ExchangePipeline) async -> (status: Int, body: JSONValue) {
        let callID = UUID().uuidString.lowercased()
        let (answers, announce) = AsyncStream<FirstAnswer>.makeStream()
        let run = Task<Result<ToolAnswer, any Error>, Never> {
            let result: Result<ToolAnswer, any Error>
            do {
                result = .success(
                    try await pipeline.invokeTool(
                        provider: invocation.provider,
                        name: invocation.toolName,
                        arguments: invocation.kwargs,
                        testID: invocation.testID,
                        typeName: invocation.typeName
                    ) {
                        try await self.awaitReport(callID) { announce.yield(.run(callID: callID)) }
                    }
                )
            } catch {
                result = .failure(error)
            }
            announce.yield(.final(result))
            announce.finish()
            return result
        }
        for await answer in answers {
            switch answer {
            case .run(let id):
                pending.withLock { $0[id]?.run = run }
                return (200, ["outcome": "run", "call_id": .string(id)])
            case .final(let result):
                return Self.reply(result)
            }
        }
        return Self.reply(await run.value)
    }

    /// `POST /__recorder/tools/result`.
    func report(_ json: JSONValue) async -> (status: Int, body: JSONValue) {
        guard let callID = json["call_id"]?.stringValue else {
            return Self.failure(
                Invocation.invalid(#"Send {"call_id": ..., "result": ...} (or "error", or "cancelled")."#)
            )
        }
        let report: Report
        if let result = json["result"] {
            report = .finished(.returned(result))
        } else if case .object? = json["error"], let error = json["error"] {
            guard let type = error["type"]?.stringValue else {
                return Self.failure(
                    Invocation.invalid("\"error\" needs a \"type\" (the exception's class) and a \"message\".")
                )
            }
            report = .finished(
                .raised(
                    RecordedException(
                        category: error["category"]?.stringValue ?? "builtin",
                        provider: error["provider"]?.stringValue,
                        type: type,
                        message: error["message"]?.stringValue ?? "",
                        statusCode: nil,
                        body: nil
                    )
                )
            )
        } else if json["cancelled"]?.boolValue == true {
            report = .cancelled
        } else {
            return Self.failure(Invocation.invalid(#"Send "result", "error" or "cancelled": true with the call_id."#))
        }
        guard let call = pending.withLock({ $0.removeValue(forKey: callID) }) else {
            return Self.failure(
                ExchangeError(
                    status: 404,
                    type: "unknown_tool_call",
                    message:
                        "No tool call \(callID) is waiting for a result: it was answered already, or abandoned after "
                        + "\(timeout) without one."
                )
            )
        }
        switch report {
        case .finished(let outcome): call.continuation.resume(returning: outcome)
        case .cancelled: call.continuation.resume(throwing: ToolCallAbandoned(reason: "the client cancelled it"))
        }
        guard let run = call.run else { return (200, ["outcome": "cancelled"]) }
        return Self.reply(await run.value)
    }

    // MARK: Waiting for a client

    /// Suspends the pipeline's call until the client reports, or ``timeout`` passes.
    private func awaitReport(_ callID: String, announce: @Sendable () -> Void) async throws -> ToolCallOutcome {
        let timeout = timeout
        let expiry = Task {
            try await Task.sleep(for: timeout)
            if let call = pending.withLock({ $0.removeValue(forKey: callID) }) {
                call.continuation.resume(
                    throwing: ToolCallAbandoned(reason: "no result was posted within \(timeout)")
                )
            }
        }
        defer { expiry.cancel() }
        return try await withCheckedThrowingContinuation { continuation in
            pending.withLock { $0[callID] = PendingToolCall(continuation: continuation) }
            announce()
        }
    }

    // MARK: Replies

    private static func reply(_ result: Result<ToolAnswer, any Error>) -> (status: Int, body: JSONValue) {
        switch result {
        case .success(let answer): return (200, json(answer))
        case .failure(let error as RecorderError): return failure(ExchangeError(error))
        case .failure(let error as ToolCallAbandoned):
            return failure(ExchangeError(status: 408, type: "tool_call_abandoned", message: error.description))
        case .failure(let error):
            return failure(ExchangeError(status: 500, type: "tool_call_failed", message: "\(error)"))
        }
    }

    private static func json(_ answer: ToolAnswer) -> JSONValue {
        var object = JSONObject()
        switch answer.source {
        case .replayed(let path):
            object["outcome"] = "replayed"
            object["path"] = .string(path)
        case .recorded(let path):
            object["outcome"] = "recorded"
            object["path"] = .string(path)
        case .passedThrough:
            object["outcome"] = "passed_through"
        }
        switch answer.result {
        case .success(let value):
            object["result"] = value
            object["type_name"] = answer.typeName.map(JSONValue.string) ?? .null
        case .failure(let error):
            object["error"] = ["type": .string(error.type), "message": .string(error.message)]
        }
        return .object(object)
    }

    /// An error in the shape of every other control endpoint's (OpenAI's), a miss with its `nearest`.
    static func failure(_ error: ExchangeError) -> (status: Int, body: JSONValue) {
        var object = JSONObject()
        object["message"] = .string(error.message)
        object["type"] = .string(error.type)
        for (key, value) in error.details.members { object[key] = value }
        return (error.status, ["error": .object(object)])
    }
}

/// A call told to run, waiting for its client's result.
private struct PendingToolCall: Sendable {
    let continuation: CheckedContinuation<ToolCallOutcome, any Error>
    /// The pipeline's run of the call, whose end the result request answers with.
    var run: Task<Result<ToolAnswer, any Error>, Never>?
}

/// A tool call that never finished: not recorded.
struct ToolCallAbandoned: Error, CustomStringConvertible {
    let reason: String
    var description: String { "The tool call was abandoned: \(reason); nothing was recorded." }
}
