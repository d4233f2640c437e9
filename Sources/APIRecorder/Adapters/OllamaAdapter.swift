/// Ollama's native API (`/api/chat`, `/api/generate`, `/api/embed`, `/api/embeddings`,
/// `/api/tags`, `/api/ps`, `/api/show`, `/api/pull`), stored as the reference stores it: inference
/// recordings recorded as POST, typed `ollama._types.*`, NDJSON streams as lists of chunks, the
/// Ollama response normalisation (`created_at`, durations), and `/api/tags` as a shared model list.
package struct OllamaAdapter: ProviderAdapter {
    package var redaction: SecretRedaction

    package init(redaction: SecretRedaction = SecretRedaction()) {
        self.redaction = redaction
    }

    /// The `ollama._types` class of an endpoint's responses (and of each stream chunk).
    static func typeName(forEndpoint endpoint: String) -> String? {
        switch endpoint {
        case "/api/chat": return "ollama._types.ChatResponse"
        case "/api/generate": return "ollama._types.GenerateResponse"
        case "/api/embed": return "ollama._types.EmbedResponse"
        case "/api/embeddings": return "ollama._types.EmbeddingsResponse"
        case "/api/tags": return "ollama._types.ListResponse"
        case "/api/ps": return "ollama._types.ProcessResponse"
        case "/api/show": return "ollama._types.ShowResponse"
        case "/api/pull": return "ollama._types.ProgressResponse"
        default: return nil
        }
    }

    /// What `prepare` derived from a request.
    package struct Details: Sendable {
        var endpoint: String
        /// The `ollama._types` class of the endpoint's responses.
        var typeName: String?
        var model: String
    }

    package func prepare(_ request: ExchangeRequest) throws(ExchangeError) -> PreparedExchange<Details> {
        let (body, upstreamBody) = redaction.redact(
            body: try request.jsonBody(),
            original: request.body,
            upstreamKey: request.upstreamKey
        )
        let (_, upstreamQuery) = redaction.redact(query: request.query, upstreamKey: request.upstreamKey)
        // The reference records every Ollama SDK call as POST, list and process calls included.
        let identity = RequestIdentity.inference(
            method: "POST",
            url: request.recordedURL,
            body: body,
            testID: request.testID
        )
        let model = body["model"]?.stringValue
        let recorderRequest = RecorderRequest(
            identity: identity,
            testID: request.testID,
            summary: RequestSummary(method: "POST", url: request.recordedURL, model: model),
            isModelList: request.path == "/api/tags"
        )
        return PreparedExchange(
            request: request,
            recorderRequest: recorderRequest,
            recordedBody: body,
            upstreamBody: upstreamBody,
            upstreamQuery: upstreamQuery,
            details: Details(
                endpoint: request.path,
                typeName: Self.typeName(forEndpoint: request.path),
                model: model ?? ""
            )
        )
    }

    package func recording(for exchange: PreparedExchange<Details>, live: LiveOutcome) -> Recording {
        Recording.inference(
            testID: exchange.request.testID,
            method: "POST",
            url: exchange.request.recordedURL,
            body: exchange.recordedBody,
            endpoint: exchange.details.endpoint,
            model: exchange.details.model,
            outcome: live.outcome,
            extraResponseKeys: live.extraResponseKeys
        )
    }

    package func liveResponse(
        for exchange: PreparedExchange<Details>,
        status: Int,
        contentType: String?
    ) -> LiveResponse {
        if status >= 400 { return .whole { Self.errorOutcome($0, status: status) } }
        let typeName = exchange.details.typeName
        let requestHash = exchange.hash
        if contentType?.lowercased().hasPrefix("application/x-ndjson") == true {
            return .stream(NDJSONTranscoder(typeName: typeName, requestHash: requestHash))
        }
        return .whole { bytes in
            guard case .object(let object)? = try? JSONValue(parsing: bytes) else {
                return .body(.string(String(decoding: bytes, as: UTF8.self)))
            }
            return .body(Self.stored(object, typeName: typeName, requestHash: requestHash))
        }
    }

    /// A response object as recorded: typed and normalised.
    static func stored(_ object: JSONObject, typeName: String?, requestHash: String) -> JSONValue {
        typeName.map { ResponseNormalization.typed($0, data: object, requestHash: requestHash) }
            ?? .object(ResponseNormalization.normalize(object, requestHash: requestHash))
    }

    /// A chunk as a replay sends it: its JSON on one line.
    static func line(_ chunk: JSONValue) -> [UInt8] {
        ResponseNormalization.untyped(chunk).compactBytes() + [0x0A]
    }

    /// One JSON object per line: each line is forwarded as soon as it is complete, in the form a
    /// replay will send it, and recorded as a typed, normalised chunk. Lines that are not JSON
    /// objects cannot be recorded, so they are not forwarded either.
    struct NDJSONTranscoder: StreamTranscoder {
        let typeName: String?
        let requestHash: String
        var pending: [UInt8] = []
        var chunks: [JSONValue] = []
        var offsets = ChunkOffsets()

        init(typeName: String?, requestHash: String) {
            self.typeName = typeName
            self.requestHash = requestHash
        }

        var contentType: String { "application/x-ndjson" }

        mutating func consume(_ bytes: [UInt8]) -> [UInt8] {
            var out: [UInt8] = []
            for byte in bytes {
                if byte == 0x0A {
                    out += line()
                } else {
                    pending.append(byte)
                }
            }
            return out
        }

        private mutating func line() -> [UInt8] {
            defer { pending.removeAll(keepingCapacity: true) }
            guard case .object(let object)? = try? JSONValue(parsing: pending) else { return [] }
            offsets.markArrival()
            let chunk = OllamaAdapter.stored(object, typeName: typeName, requestHash: requestHash)
            chunks.append(chunk)
            return OllamaAdapter.line(chunk)
        }

        mutating func finish() -> (tail: [UInt8], outcome: RecordedOutcome) {
            let tail = pending.isEmpty ? [] : line()
            return (tail, .stream(chunks))
        }

        mutating func fail(_ reason: String) -> RecordedOutcome {
            .streamEndedEarly(provider: "ollama", type: "ResponseError", reason: reason, chunks: chunks)
        }

        var extraResponseKeys: JSONObject { offsets.responseKeys }
    }

    /// An error status, recorded as the `ollama.ResponseError` the client raises.
    static func errorOutcome(_ buffer: [UInt8], status: Int) -> RecordedOutcome {
        let parsed = try? JSONValue(parsing: buffer)
        let message = parsed?["error"]?.stringValue ?? String(decoding: buffer, as: UTF8.self)
        return .exception(
            RecordedException(
                provider: "ollama",
                type: "ResponseError",
                message: message,
                statusCode: status,
                body: parsed ?? .string(message)
            )
        )
    }

    /// `prepare` reads the path, query, base, body, test id and upstream key only.
    package var preparationFingerprint: Int? { redaction.fingerprint }

    package func replayPlan(
        for recording: Recording,
        exchange: PreparedExchange<Details>
    ) throws(RecordingError) -> ReplayPlan {
        if let exception = recording.exception, !recording.isStreaming {
            var body = exception.body ?? .null
            if body["error"] == nil { body = ["error": .string(exception.message ?? "")] }
            return ReplayPlan(
                status: exception.statusCode ?? 500,
                contentType: "application/json",
                body: .whole(body.compactBytes())
            )
        }
        if let chunks = recording.chunks {
            return .recordedStream(chunks.map(Self.line), contentType: "application/x-ndjson", of: recording)
        }
        if case .string(let text) = recording.body { return .text(text, status: 200) }
        return ReplayPlan(
            status: 200,
            contentType: "application/json",
            body: .whole(ResponseNormalization.untyped(recording.body).compactBytes())
        )
    }

    package func errorBody(_ error: ExchangeError) -> [UInt8] {
        // Ollama's error is a string: extra facts go beside it.
        var object: JSONObject = ["error": .string("\(error.type): \(error.message)")]
        for (key, value) in error.details.members { object[key] = value }
        return JSONValue.object(object).compactBytes()
    }
}
