/// OpenAI-compatible APIs: chat completions, completions, embeddings, the Responses API and the
/// models list, plus any other path as an untyped inference recording.
///
/// Recordings use the reference's `__type__` tags (`ChatCompletion`, `ChatCompletionChunk`,
/// `Completion`, `CreateEmbeddingResponse`, a list of `Model`), its response normalisation, and its
/// `exception_data` for error statuses. Chat-completion tool-call ids are made deterministic, in
/// the recording and in what the client receives, because they flow into the next request of an
/// agent loop and would otherwise change its hash on every re-recording.
package struct OpenAIAdapter: ProviderAdapter {
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

        /// A whole response object with the ids a client sends back made deterministic: tool-call
        /// ids of chat completions, item and call ids of the Responses API.
        func deterministic(_ object: JSONObject, requestHash: String, issued: IssuedIDs?) -> JSONObject {
            switch self {
            case .chatCompletions:
                return DeterministicToolCallIDs.apply(to: object, requestHash: requestHash, issued: issued)
            case .responses:
                var ids = DeterministicIDs(.responses, requestHash: requestHash, issued: issued)
                return ids.rewrite(.object(object)).objectValue ?? object
            default:
                return object
            }
        }

        /// Whether the SSE stream ends with `data: [DONE]`.
        var streamEndsWithDone: Bool { self == .chatCompletions || self == .completions || self == .other }
    }

    /// What `prepare` derived from a request.
    package struct Details: Sendable {
        var kind: Endpoint
        /// The logical endpoint (`/v1/chat/completions`).
        var endpoint: String
        /// The method recorded (and hashed): the reference records every SDK call as POST.
        var recordedMethod: String
        var model: String
    }

    /// The provider name written into `exception_data`.
    package let provider: String
    package var redaction: SecretRedaction

    package init(provider: String = "openai", redaction: SecretRedaction = SecretRedaction()) {
        self.provider = provider
        self.redaction = redaction
    }

    /// The logical endpoint for a path below the route: `/chat/completions` and
    /// `/v1/chat/completions` are both `/v1/chat/completions`.
    static func endpoint(forPath path: String) -> String {
        path == "/v1" || path.hasPrefix("/v1/") ? path : "/v1" + path
    }

    // MARK: Requests

    package func prepare(_ request: ExchangeRequest) throws(ExchangeError) -> PreparedExchange<Details> {
        let method = request.method.pythonUpper
        let endpoint = Self.endpoint(forPath: request.path)
        let kind = Endpoint(endpoint: endpoint, method: method)
        if request.body.isEmpty, !["GET", "DELETE", "HEAD"].contains(method), kind != .other {
            throw ExchangeError(
                status: 400,
                type: "invalid_request_error",
                message: "The request body is empty; expected JSON."
            )
        }
        var (body, upstreamBody) = redaction.redact(
            body: try request.jsonBody(),
            original: request.body,
            upstreamKey: request.upstreamKey
        )
        let (recordedQuery, upstreamQuery) = redaction.redact(query: request.query, upstreamKey: request.upstreamKey)
        if kind == .other, let recordedQuery {
            // The identity of an inference request is its path and body; keep the query in the
            // body so that `?page=2` does not replay `?page=1`.
            var object = body.objectValue ?? ["__body__": body]
            object["__query__"] = .string(recordedQuery)
            body = .object(object)
        }
        let model = body["model"]?.stringValue
        let recordedMethod = kind == .models ? "POST" : method
        let recordedURL = request.recordedURL
        let identity = RequestIdentity.inference(
            method: recordedMethod,
            url: recordedURL,
            body: body,
            testID: request.testID
        )
        let recorderRequest = RecorderRequest(
            identity: identity,
            testID: request.testID,
            summary: RequestSummary(
                method: recordedMethod,
                url: recordedQuery.map { recordedURL + "?" + $0 } ?? recordedURL,
                model: model
            ),
            isModelList: RequestIdentity.modelListPaths.contains(endpoint)
        )
        return PreparedExchange(
            request: request,
            recorderRequest: recorderRequest,
            recordedBody: body,
            upstreamBody: upstreamBody,
            upstreamQuery: upstreamQuery,
            details: Details(kind: kind, endpoint: endpoint, recordedMethod: recordedMethod, model: model ?? "")
        )
    }

    package func recording(for exchange: PreparedExchange<Details>, live: LiveOutcome) -> Recording {
        Recording.inference(
            testID: exchange.request.testID,
            method: exchange.details.recordedMethod,
            url: exchange.request.recordedURL,
            body: exchange.recordedBody,
            endpoint: exchange.details.endpoint,
            model: exchange.details.model,
            outcome: live.outcome,
            extraResponseKeys: live.extraResponseKeys
        )
    }

    // MARK: Live responses

    package func liveResponse(
        for exchange: PreparedExchange<Details>,
        status: Int,
        contentType: String?
    ) -> LiveResponse {
        let kind = exchange.details.kind
        let requestHash = exchange.hash
        let provider = self.provider
        let issued = exchange.issuedIDs
        if status >= 400 {
            return .whole { body in Self.errorOutcome(body, status: status, provider: provider) }
        }
        if ResponseHeaderPolicy.isEventStream(contentType) {
            return .stream(StreamTranscoder(kind: kind, requestHash: requestHash, issued: issued))
        }
        return .whole { body in Self.bodyOutcome(body, kind: kind, requestHash: requestHash, issued: issued) }
    }

    /// A whole JSON body, recorded typed with deterministic tool-call ids; a body that is not a
    /// JSON object is recorded as text (and replayed as it came).
    static func bodyOutcome(
        _ bytes: [UInt8],
        kind: Endpoint,
        requestHash: String,
        issued: IssuedIDs?
    ) -> RecordedOutcome {
        guard case .object(var object) = (try? JSONValue(parsing: bytes)) ?? .null else {
            return .body(.string(String(decoding: bytes, as: UTF8.self)))
        }
        object = kind.deterministic(object, requestHash: requestHash, issued: issued)
        switch kind {
        case .models:
            return .body(
                .array(
                    (object["data"]?.arrayValue ?? []).map { model -> JSONValue in
                        ResponseNormalization.typed(
                            "openai.types.model.Model",
                            data: model.objectValue ?? JSONObject(),
                            requestHash: requestHash
                        )
                    }
                )
            )
        default:
            return .body(kind.stored(object, typeName: kind.bodyType, requestHash: requestHash))
        }
    }

    /// An SSE stream: each JSON event is forwarded as soon as it is complete, in the form a replay
    /// sends it, and recorded as a chunk. Events that are not JSON objects (a provider's keep-alive
    /// text) cannot be recorded as chunks, so they are not forwarded either: record and replay
    /// show the client the same events.
    struct StreamTranscoder: APIRecorder.StreamTranscoder {
        let kind: Endpoint
        let requestHash: String
        var parser = SSEParser()
        var chunks: [JSONValue] = []
        var offsets = ChunkOffsets()
        /// The Responses API's item and call ids, made deterministic across the stream's events.
        var ids: DeterministicIDs?
        let issued: IssuedIDs?

        init(kind: Endpoint, requestHash: String, issued: IssuedIDs?) {
            self.kind = kind
            self.requestHash = requestHash
            self.issued = issued
            if kind == .responses { ids = DeterministicIDs(.responses, requestHash: requestHash, issued: issued) }
        }

        var contentType: String { "text/event-stream" }

        mutating func consume(_ bytes: [UInt8]) -> [UInt8] {
            var out: [UInt8] = []
            for event in parser.feed(bytes) { out.append(contentsOf: handle(event)) }
            return out
        }

        private mutating func handle(_ event: SSEEvent) -> [UInt8] {
            if event.data == "[DONE]" {
                // Sent at the end, after the recording is saved: clients stop reading at [DONE].
                return []
            }
            guard case .object(var object) = (try? JSONValue(parsing: event.data)) ?? .null else { return [] }
            if kind == .chatCompletions {
                object = DeterministicToolCallIDs.apply(to: object, requestHash: requestHash, issued: issued)
            } else if var ids, case .object(let rewritten) = ids.rewrite(.object(object)) {
                object = rewritten
                self.ids = ids
            }
            offsets.markArrival()
            let chunk = kind.stored(object, typeName: kind.chunkType, requestHash: requestHash)
            chunks.append(chunk)
            return OpenAIAdapter.rendered(chunk: chunk, kind: kind)
        }

        mutating func finish() -> (tail: [UInt8], outcome: RecordedOutcome) {
            var tail: [UInt8] = []
            if let last = parser.finish() { tail = handle(last) }
            // A replay ends with [DONE] where the endpoint's streams do, whatever the upstream sent.
            if kind.streamEndsWithDone { tail += SSEEvent(data: "[DONE]").encoded }
            return (tail, .stream(chunks))
        }

        mutating func fail(_ reason: String) -> RecordedOutcome {
            .streamEndedEarly(provider: nil, type: "APIConnectionError", reason: reason, chunks: chunks)
        }

        var extraResponseKeys: JSONObject { offsets.responseKeys }
    }

    /// An error status, recorded as the exception the SDK raises.
    static func errorOutcome(_ buffer: [UInt8], status: Int, provider: String) -> RecordedOutcome {
        let parsed = try? JSONValue(parsing: buffer)
        let errorObject = parsed?["error"] ?? parsed ?? .string(String(decoding: buffer, as: UTF8.self))
        let described = PythonRepr.repr(parsed ?? .string(String(decoding: buffer, as: UTF8.self)))
        let message = "Error code: \(status) - \(described)"
        return .exception(
            RecordedException(
                provider: provider,
                type: OpenAIAdapter.errorClass(forStatus: status),
                message: message,
                statusCode: status,
                body: errorObject
            )
        )
    }

    /// The `openai` SDK's exception class for an HTTP status.
    package static func errorClass(forStatus status: Int) -> String {
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

    /// The plan depends on the recording and the endpoint only.
    package func replayCacheKey(for exchange: PreparedExchange<Details>) -> String? {
        // Constant strings: describing the enum would go through reflection on every replay.
        switch exchange.details.kind {
        case .chatCompletions: "openai.chat"
        case .completions: "openai.completions"
        case .embeddings: "openai.embeddings"
        case .responses: "openai.responses"
        case .models: "openai.models"
        case .other: "openai.other"
        }
    }

    /// `prepare` reads the method, path, query, base, body, test id and upstream key only.
    package var preparationFingerprint: Int? {
        var hasher = Hasher()
        hasher.combine(provider)
        hasher.combine(redaction.fingerprint)
        return hasher.finalize()
    }

    package func replayPlan(
        for recording: Recording,
        exchange: PreparedExchange<Details>
    ) throws(RecordingError) -> ReplayPlan {
        let kind = exchange.details.kind
        if let exception = recording.exception, !recording.isStreaming {
            var errorBody = exception.body ?? .null
            if errorBody["error"] == nil { errorBody = ["error": errorBody] }
            return ReplayPlan(
                status: exception.statusCode ?? 500,
                contentType: "application/json",
                body: .whole(errorBody.compactBytes())
            )
        }
        if let chunks = recording.chunks {
            var frames = chunks.map { Self.rendered(chunk: $0, kind: kind) }
            if kind.streamEndsWithDone, !recording.isException { frames.append(SSEEvent(data: "[DONE]").encoded) }
            return .recordedStream(frames, contentType: "text/event-stream", of: recording)
        }
        if case .string(let text) = recording.body { return .text(text, status: 200) }
        let effectiveKind = recording.isModelList ? Endpoint.models : kind
        return ReplayPlan(
            status: 200,
            contentType: "application/json",
            body: .whole(Self.rendered(body: recording.body, kind: effectiveKind))
        )
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

    package func errorBody(_ error: ExchangeError) -> [UInt8] {
        var object: JSONObject = [
            "message": .string(error.message), "type": .string(error.type), "param": nil, "code": .string(error.type),
        ]
        for (key, value) in error.details.members { object[key] = value }
        return JSONValue.object(["error": .object(object)]).compactBytes()
    }
}
