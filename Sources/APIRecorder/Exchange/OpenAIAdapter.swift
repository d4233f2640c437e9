/// OpenAI-compatible APIs: chat completions, completions, embeddings, the Responses API and the
/// models list, plus any other path as an untyped inference recording.
///
/// Recordings use the reference's `__type__` tags (`ChatCompletion`, `ChatCompletionChunk`,
/// `Completion`, `CreateEmbeddingResponse`, a list of `Model`), its response normalisation, and its
/// `exception_data` for error statuses. Chat-completion tool-call ids are made deterministic, in
/// the recording and in what the client receives, because they flow into the next request of an
/// agent loop and would otherwise change its hash on every re-recording.
public struct OpenAIAdapter: ProviderAdapter {
    /// The endpoints with rules of their own.
    enum Endpoint: Equatable {
        case chatCompletions, completions, embeddings, responses, models, other

        init(endpoint: String, method: String) {
            switch (method, endpoint) {
            case ("POST", "/v1/chat/completions"): self = .chatCompletions
            case ("POST", "/v1/completions"): self = .completions
            case ("POST", "/v1/embeddings"): self = .embeddings
            case ("POST", "/v1/responses"): self = .responses
            case ("GET", "/v1/models"), ("POST", "/v1/models"): self = .models
            default: self = .other
            }
        }

        /// The SDK type of a whole response (`nil`: stored untyped).
        var bodyType: String? {
            switch self {
            case .chatCompletions: return "openai.types.chat.chat_completion.ChatCompletion"
            case .completions: return "openai.types.completion.Completion"
            case .embeddings: return "openai.types.create_embedding_response.CreateEmbeddingResponse"
            case .models: return "openai.types.model.Model"
            case .responses, .other: return nil
            }
        }

        /// The SDK type of a stream chunk.
        var chunkType: String? {
            switch self {
            case .chatCompletions: return "openai.types.chat.chat_completion_chunk.ChatCompletionChunk"
            case .completions: return "openai.types.completion.Completion"
            default: return nil
            }
        }

        /// Whether the reference's response normalisation applies. The Responses API keeps its
        /// ids and timestamps: upstreams keep state under `resp_...` ids.
        var normalizesResponses: Bool { self != .responses && self != .other }

        /// A response object (or stream chunk) as recorded: typed as the SDK types it, else
        /// normalised where the reference normalises, else as it came.
        func stored(_ object: JSONObject, typeName: String?, requestHash: String) -> JSONValue {
            if let typeName { return ResponseNormalization.typed(typeName, data: object, requestHash: requestHash) }
            guard normalizesResponses else { return .object(object) }
            return .object(ResponseNormalization.normalize(object, requestHash: requestHash))
        }

        /// Whether the SSE stream ends with `data: [DONE]`.
        var streamEndsWithDone: Bool { self == .chatCompletions || self == .completions || self == .other }
    }

    /// The provider name written into `exception_data`.
    public let provider: String
    public var redaction: SecretRedaction

    public init(provider: String = "openai", redaction: SecretRedaction = SecretRedaction()) {
        self.provider = provider
        self.redaction = redaction
    }

    /// The logical endpoint for a path below the route: `/chat/completions` and
    /// `/v1/chat/completions` are both `/v1/chat/completions`.
    static func endpoint(forPath path: String) -> String {
        path == "/v1" || path.hasPrefix("/v1/") ? path : "/v1" + path
    }

    // MARK: Requests

    public func prepare(_ request: ExchangeRequest) throws(ExchangeError) -> PreparedExchange {
        let method = request.method.uppercased()
        let endpoint = Self.endpoint(forPath: request.path)
        let kind = Endpoint(endpoint: endpoint, method: method)
        if request.body.isEmpty, !["GET", "DELETE", "HEAD"].contains(method), kind != .other {
            throw ExchangeError(status: 400, type: "invalid_request_error", message: "The request body is empty; expected JSON.")
        }
        var (body, upstreamBody) = redaction.redact(
            body: try request.jsonBody(), original: request.body, upstreamKey: request.upstreamKey)
        if kind == .other, let query = redaction.redact(query: request.query) {
            // The identity of an inference request is its path and body; keep the query in the
            // body so that `?page=2` does not replay `?page=1`.
            var object = body.objectValue ?? ["__body__": body]
            object["__query__"] = .string(query)
            body = .object(object)
        }
        let model = body["model"]?.stringValue
        // The reference records every SDK call as POST, the models list included.
        let recordedMethod = kind == .models ? "POST" : method
        let identity = RequestIdentity.inference(
            method: recordedMethod, url: request.recordedURL, body: body, testID: request.testID)
        let recorderRequest = RecorderRequest(
            identity: identity, testID: request.testID, isModelList: RequestIdentity.modelListPaths.contains(endpoint),
            method: recordedMethod, url: request.recordedURL + (redaction.redact(query: request.query).map { "?\($0)" } ?? ""),
            model: model)
        return PreparedExchange(
            request: request, recorderRequest: recorderRequest, body: body,
            wantsStream: body["stream"]?.boolValue ?? false, endpoint: endpoint, upstreamBody: upstreamBody)
    }

    public func recording(
        for exchange: PreparedExchange, outcome: RecordedOutcome, extraResponseKeys: JSONObject
    ) -> Recording {
        Recording.inference(
            testID: exchange.request.testID, method: exchange.recorderRequest.method,
            url: exchange.request.recordedURL, body: exchange.body, endpoint: exchange.endpoint,
            model: exchange.body["model"]?.stringValue ?? "", outcome: outcome, extraResponseKeys: extraResponseKeys)
    }

    // MARK: Live responses

    public func transcoder(for exchange: PreparedExchange, status: Int, contentType: String?) -> any LiveTranscoder {
        let kind = Endpoint(endpoint: exchange.endpoint, method: exchange.request.method.uppercased())
        if status >= 400 {
            return ErrorTranscoder(provider: provider, status: status)
        }
        if let contentType, contentType.lowercased().hasPrefix("text/event-stream") {
            return StreamTranscoder(kind: kind, requestHash: exchange.hash)
        }
        return BodyTranscoder(kind: kind, requestHash: exchange.hash)
    }

    /// A whole JSON body: buffered, then sent with deterministic tool-call ids, and recorded typed.
    struct BodyTranscoder: WholeBodyTranscoding {
        let kind: Endpoint
        let requestHash: String
        var buffer: [UInt8] = []

        mutating func finish() -> (tail: [UInt8], outcome: RecordedOutcome?) {
            guard case .object(var object) = (try? JSONValue(parsing: buffer)) ?? .null else {
                // Not JSON: pass it on untouched, and record it as text.
                return (buffer, .body(.string(String(decoding: buffer, as: UTF8.self))))
            }
            if kind == .chatCompletions { object = DeterministicToolCallIDs.apply(to: object, requestHash: requestHash) }
            let stored: JSONValue
            switch kind {
            case .models:
                stored = .array((object["data"]?.arrayValue ?? []).map { model -> JSONValue in
                    ResponseNormalization.typed(
                        "openai.types.model.Model", data: model.objectValue ?? JSONObject(), requestHash: requestHash)
                })
            default:
                stored = kind.stored(object, typeName: kind.bodyType, requestHash: requestHash)
            }
            // The client gets exactly what a replay will send, so record and replay look the same.
            return (OpenAIAdapter.rendered(body: stored, kind: kind), .body(stored))
        }

    }

    /// An SSE stream: each event is forwarded as soon as it is complete, and recorded as a chunk.
    struct StreamTranscoder: LiveTranscoder {
        let kind: Endpoint
        let requestHash: String
        var parser = SSEParser()
        var chunks: [JSONValue] = []
        var offsets = ChunkOffsets()
        var sawDone = false

        mutating func consume(_ bytes: [UInt8]) -> [UInt8] {
            var out: [UInt8] = []
            for event in parser.feed(bytes) { out.append(contentsOf: handle(event)) }
            return out
        }

        private mutating func handle(_ event: SSEEvent) -> [UInt8] {
            if event.data == "[DONE]" {
                // Held back until the recording is saved: clients stop reading at [DONE].
                sawDone = true
                return []
            }
            guard case .object(var object) = (try? JSONValue(parsing: event.data)) ?? .null else {
                // Not JSON (a keep-alive or a provider's own text): forward, do not record.
                return event.encoded
            }
            if kind == .chatCompletions { object = DeterministicToolCallIDs.apply(to: object, requestHash: requestHash) }
            offsets.markArrival()
            let chunk = kind.stored(object, typeName: kind.chunkType, requestHash: requestHash)
            chunks.append(chunk)
            return OpenAIAdapter.rendered(chunk: chunk, kind: kind)
        }

        mutating func finish() -> (tail: [UInt8], outcome: RecordedOutcome?) {
            var tail: [UInt8] = []
            if let last = parser.finish() { tail = handle(last) }
            if sawDone { tail += SSEEvent(data: "[DONE]").encoded }
            return (tail, .stream(chunks))
        }

        mutating func fail(_ reason: String) -> RecordedOutcome? {
            .streamEndedEarly(provider: nil, type: "APIConnectionError", reason: reason, chunks: chunks)
        }

        var extraResponseKeys: JSONObject {
            offsets.responseKeys
        }
    }

    /// An error status: forwarded as it came, recorded as the exception the SDK raises.
    struct ErrorTranscoder: WholeBodyTranscoding {
        let provider: String
        let status: Int
        var buffer: [UInt8] = []

        mutating func finish() -> (tail: [UInt8], outcome: RecordedOutcome?) {
            let parsed = try? JSONValue(parsing: buffer)
            let errorObject = parsed?["error"] ?? parsed ?? .string(String(decoding: buffer, as: UTF8.self))
            let described = PythonRepr.repr(parsed ?? .string(String(decoding: buffer, as: UTF8.self)))
            let message = "Error code: \(status) - \(described)"
            let exception = RecordedException(
                provider: provider, type: OpenAIAdapter.errorClass(forStatus: status), message: message,
                statusCode: status, body: errorObject)
            return (buffer, .exception(exception))
        }

    }

    /// The `openai` SDK's exception class for an HTTP status.
    public static func errorClass(forStatus status: Int) -> String {
        switch status {
        case 400: return "BadRequestError"
        case 401: return "AuthenticationError"
        case 403: return "PermissionDeniedError"
        case 404: return "NotFoundError"
        case 409: return "ConflictError"
        case 422: return "UnprocessableEntityError"
        case 429: return "RateLimitError"
        case 500...: return "InternalServerError"
        default: return "APIStatusError"
        }
    }

    // MARK: Replay

    public func replayPlan(for recording: Recording, exchange: PreparedExchange) -> ReplayPlan {
        let kind = Endpoint(endpoint: exchange.endpoint, method: exchange.request.method.uppercased())
        if let exception = recording.exception, !recording.isStreaming {
            var errorBody = exception.body ?? .null
            if errorBody["error"] == nil { errorBody = ["error": errorBody] }
            return ReplayPlan(
                status: exception.statusCode ?? 500, contentType: "application/json",
                body: .whole(errorBody.compactBytes()))
        }
        if let chunks = recording.chunks {
            var frames = chunks.map { Self.rendered(chunk: $0, kind: kind) }
            if kind.streamEndsWithDone, !recording.isException { frames.append(SSEEvent(data: "[DONE]").encoded) }
            return .recordedStream(frames, contentType: "text/event-stream", of: recording)
        }
        let effectiveKind = recording.isModelList ? Endpoint.models : kind
        if case .string(let text) = recording.body, kind == .other {
            return ReplayPlan(status: 200, contentType: "text/plain; charset=utf-8", body: .whole(Array(text.utf8)))
        }
        return ReplayPlan(
            status: 200, contentType: "application/json", body: .whole(Self.rendered(body: recording.body, kind: effectiveKind)))
    }

    /// The HTTP body for a stored response body: the typed object's data, and a model list as
    /// `{"object": "list", "data": [...]}`. Record and replay both send this.
    static func rendered(body stored: JSONValue, kind: Endpoint) -> [UInt8] {
        if kind == .models, case .array(let models) = stored {
            // Sorted by id, as a replay's union of several servers' lists is.
            let entries = models.map(ResponseNormalization.untyped).enumerated().sorted { left, right in
                let (a, b) = (left.element["id"]?.stringValue ?? "", right.element["id"]?.stringValue ?? "")
                return a == b ? left.offset < right.offset : a.utf8.lexicographicallyPrecedes(b.utf8)
            }.map(\.element)
            return JSONValue.object(["object": "list", "data": .array(entries)]).compactBytes()
        }
        return ResponseNormalization.untyped(stored).compactBytes()
    }

    /// The SSE event for a stored chunk; Responses API events are named by their `type`.
    static func rendered(chunk: JSONValue, kind: Endpoint) -> [UInt8] {
        let data = ResponseNormalization.untyped(chunk)
        let name = kind == .responses ? data["type"]?.stringValue : nil
        return SSEEvent(event: name, data: String(decoding: data.compactBytes(), as: UTF8.self)).encoded
    }

    public func errorBody(_ error: ExchangeError) -> [UInt8] {
        let body: JSONValue = [
            "error": ["message": .string(error.message), "type": .string(error.type), "param": nil, "code": .string(error.type)]
        ]
        return body.compactBytes()
    }
}

/// Deterministic chat-completion tool-call ids: `call_` + the first 24 hex of
/// SHA-256("<request hash>:<choice index>:<tool-call index>").
public enum DeterministicToolCallIDs {
    public static func id(requestHash: String, choice: Int, toolCall: Int) -> String {
        "call_" + RequestIdentity.sha256Hex(Array("\(requestHash):\(choice):\(toolCall)".utf8)).prefix(24)
    }

    /// Rewrites the ids of a chat completion or chunk (non-null ids only: stream deltas carry the
    /// id on a tool call's first delta).
    static func apply(to object: JSONObject, requestHash: String) -> JSONObject {
        guard case .array(var choices)? = object["choices"] else { return object }
        var changed = false
        for (position, choice) in choices.enumerated() {
            guard case .object(var choiceObject) = choice else { continue }
            let choiceIndex = choiceObject["index"]?.intValue ?? position
            for key in ["delta", "message"] {
                guard case .object(var message)? = choiceObject[key], case .array(var calls)? = message["tool_calls"] else {
                    continue
                }
                for (callPosition, call) in calls.enumerated() {
                    guard case .object(var callObject) = call, case .string? = callObject["id"] else { continue }
                    let callIndex = callObject["index"]?.intValue ?? callPosition
                    callObject["id"] = .string(id(requestHash: requestHash, choice: choiceIndex, toolCall: callIndex))
                    calls[callPosition] = .object(callObject)
                    changed = true
                }
                message["tool_calls"] = .array(calls)
                choiceObject[key] = .object(message)
            }
            choices[position] = .object(choiceObject)
        }
        guard changed else { return object }
        var result = object
        result["choices"] = .array(choices)
        return result
    }
}
