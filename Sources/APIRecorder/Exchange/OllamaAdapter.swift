/// Ollama's native API (`/api/chat`, `/api/generate`, `/api/embed`, `/api/embeddings`,
/// `/api/tags`, `/api/ps`, `/api/show`, `/api/pull`), stored as the reference stores it: inference
/// recordings recorded as POST, typed `ollama._types.*`, NDJSON streams as lists of chunks, the
/// Ollama response normalisation (`created_at`, durations), and `/api/tags` as a shared model list.
public struct OllamaAdapter: ProviderAdapter {
    public var redaction: SecretRedaction

    public init(redaction: SecretRedaction = SecretRedaction()) {
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

    public func prepare(_ request: ExchangeRequest) throws(ExchangeError) -> PreparedExchange {
        var body = try request.jsonBody()
        let (redacted, upstreamBody) = redaction.redact(body: body, original: request.body, upstreamKey: request.upstreamKey)
        body = redacted
        // The reference records every Ollama SDK call as POST, list and process calls included.
        let identity = RequestIdentity.inference(
            method: "POST", url: request.recordedURL, body: body, testID: request.testID)
        let recorderRequest = RecorderRequest(
            identity: identity, testID: request.testID, isModelList: request.path == "/api/tags", method: "POST",
            url: request.recordedURL, model: body["model"]?.stringValue)
        return PreparedExchange(
            request: request, recorderRequest: recorderRequest, body: body,
            wantsStream: body["stream"]?.boolValue ?? false, endpoint: request.path, upstreamBody: upstreamBody)
    }

    public func recording(
        for exchange: PreparedExchange, outcome: RecordedOutcome, extraResponseKeys: JSONObject
    ) -> Recording {
        Recording.inference(
            testID: exchange.request.testID, method: "POST", url: exchange.request.recordedURL, body: exchange.body,
            endpoint: exchange.endpoint, model: exchange.body["model"]?.stringValue ?? "", outcome: outcome,
            extraResponseKeys: extraResponseKeys)
    }

    public func transcoder(for exchange: PreparedExchange, status: Int, contentType: String?) -> any LiveTranscoder {
        if status >= 400 { return ErrorTranscoder(status: status) }
        return NDJSONTranscoder(
            typeName: Self.typeName(forEndpoint: exchange.endpoint), requestHash: exchange.hash,
            streaming: contentType?.lowercased().hasPrefix("application/x-ndjson") == true)
    }

    /// One JSON object per line: each line is forwarded as soon as it is complete, in the form a
    /// replay will send it, and recorded as a typed, normalised chunk. A single-object body is
    /// recorded as the whole response.
    struct NDJSONTranscoder: LiveTranscoder {
        let typeName: String?
        let requestHash: String
        let streaming: Bool
        var pending: [UInt8] = []
        var chunks: [JSONValue] = []
        var offsets = ChunkOffsets()

        init(typeName: String?, requestHash: String, streaming: Bool) {
            self.typeName = typeName
            self.requestHash = requestHash
            self.streaming = streaming
        }

        mutating func consume(_ bytes: [UInt8]) -> [UInt8] {
            var out: [UInt8] = []
            for byte in bytes {
                if byte == 0x0A {
                    out += line()
                } else {
                    pending.append(byte)
                }
            }
            return streaming ? out : []
        }

        private mutating func line() -> [UInt8] {
            defer { pending.removeAll(keepingCapacity: true) }
            guard case .object(let object)? = try? JSONValue(parsing: pending) else { return [] }
            offsets.markArrival()
            let chunk: JSONValue =
                typeName.map { ResponseNormalization.typed($0, data: object, requestHash: requestHash) }
                ?? .object(ResponseNormalization.normalize(object, requestHash: requestHash))
            chunks.append(chunk)
            return ResponseNormalization.untyped(chunk).compactBytes() + [0x0A]
        }

        mutating func finish() -> (tail: [UInt8], outcome: RecordedOutcome?) {
            var tail: [UInt8] = []
            if !pending.isEmpty { tail = line() }
            if streaming { return (tail, .stream(chunks)) }
            guard chunks.count == 1 else { return (tail, nil) }
            return (ResponseNormalization.untyped(chunks[0]).compactBytes(), .body(chunks[0]))
        }

        mutating func fail(_ reason: String) -> RecordedOutcome? {
            .streamEndedEarly(provider: "ollama", type: "ResponseError", reason: reason, chunks: chunks)
        }

        var extraResponseKeys: JSONObject {
            streaming ? offsets.responseKeys : JSONObject()
        }
    }

    /// An error status, recorded as the `ollama.ResponseError` the client raises.
    struct ErrorTranscoder: WholeBodyTranscoding {
        let status: Int
        var buffer: [UInt8] = []

        mutating func finish() -> (tail: [UInt8], outcome: RecordedOutcome?) {
            let parsed = try? JSONValue(parsing: buffer)
            let message = parsed?["error"]?.stringValue ?? String(decoding: buffer, as: UTF8.self)
            let exception = RecordedException(
                provider: "ollama", type: "ResponseError", message: message, statusCode: status,
                body: parsed ?? .string(message))
            return (buffer, .exception(exception))
        }

    }

    public func replayPlan(for recording: Recording, exchange: PreparedExchange) -> ReplayPlan {
        if let exception = recording.exception, !recording.isStreaming {
            var body = exception.body ?? .null
            if body["error"] == nil { body = ["error": .string(exception.message ?? "")] }
            return ReplayPlan(status: exception.statusCode ?? 500, contentType: "application/json", body: .whole(body.compactBytes()))
        }
        if let chunks = recording.chunks {
            let frames = chunks.map { ResponseNormalization.untyped($0).compactBytes() + [0x0A] }
            return .recordedStream(frames, contentType: "application/x-ndjson", of: recording)
        }
        return ReplayPlan(
            status: 200, contentType: "application/json", body: .whole(ResponseNormalization.untyped(recording.body).compactBytes()))
    }

    public func errorBody(_ error: ExchangeError) -> [UInt8] {
        JSONValue.object(["error": .string("\(error.type): \(error.message)")]).compactBytes()
    }
}
