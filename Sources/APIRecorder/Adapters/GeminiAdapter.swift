/// Gemini's REST API as the `google-genai` SDK speaks it, for the Gemini Developer API
/// (`/v1beta/models/gemini-2.5-flash:generateContent`) and Vertex AI
/// (`/v1beta1/projects/P/locations/L/publishers/google/models/gemini-2.0-flash:streamGenerateContent?alt=sse`).
///
/// The reference records `google-genai` at the SDK level, not the HTTP exchange, so
/// `generateContent` and `streamGenerateContent` are stored as it stores them: inference recordings
/// of `vertexai:///generate_content` (or `_stream`) whose body is the SDK call,
/// `{"model", "contents", "config"}` in snake_case, with the response objects in snake_case.
/// Developer-API calls get `gemini:///` in place of `vertexai:///`. A replay sends the objects back
/// in the REST API's camelCase, so the SDK builds the same objects as it did when recording.
///
/// Every other call on a Gemini route (the interactions API, model lists, token counts) is a
/// plain-HTTP recording, as the reference stores interactions; errors come in Gemini's shape.
package struct GeminiAdapter: ProviderAdapter {
    package var redaction: SecretRedaction
    private let plainHTTP: PlainHTTPAdapter

    package init(redaction: SecretRedaction = SecretRedaction()) {
        self.redaction = redaction
        self.plainHTTP = PlainHTTPAdapter(redaction: redaction)
    }

    /// A `generateContent`-family call, read off its path.
    package struct ModelCall: Equatable, Sendable {
        /// `vertexai` or `gemini`.
        var provider: String
        /// The model as the SDK call names it: `publishers/google/models/gemini-2.0-flash` on
        /// Vertex AI, `gemini-2.5-flash` on the Developer API.
        var model: String
        /// The SDK method: `/generate_content` or `/generate_content_stream`.
        var endpoint: String

        var url: String { "\(provider)://" + endpoint }
        var isStream: Bool { endpoint == "/generate_content_stream" }

        /// Reads `.../<resource>:<method>`; `nil` for paths that are not content generation.
        init?(path: String) {
            guard let colon = path.lastIndex(of: ":"), !path[colon...].contains("/") else { return nil }
            switch path[path.index(after: colon)...] {
            case "generateContent": endpoint = "/generate_content"
            case "streamGenerateContent": endpoint = "/generate_content_stream"
            default: return nil
            }
            var segments = path[..<colon].split(separator: "/").map(String.init)
            if let version = segments.first, version.hasPrefix("v1") { segments.removeFirst() }
            var vertex = false
            if segments.count >= 4, segments[0] == "projects", segments[2] == "locations" {
                segments.removeFirst(4)
                vertex = true
            }
            guard !segments.isEmpty else { return nil }
            if segments[0] == "publishers" || segments[0] == "endpoints" { vertex = true }
            provider = vertex ? "vertexai" : "gemini"
            model =
                !vertex && segments.count == 2 && segments[0] == "models"
                ? segments[1] : segments.joined(separator: "/")
        }
    }

    /// Whether `path` is a content-generation call (the `auto` adapter routes those here).
    package static func handles(path: String) -> Bool {
        // Every request of an `auto` route comes here: rule most out on bytes, before parsing.
        path.utf8.contains(UInt8(ascii: ":")) && ModelCall(path: path) != nil
    }

    // MARK: Requests

    /// What `prepare` derived from a request.
    package enum Details: Sendable {
        /// A content-generation call; `sse` when the client asked for SSE (`alt=sse`).
        case model(ModelCall, sse: Bool)
        /// Any other call: a plain-HTTP recording.
        case plain(PlainHTTPAdapter.Details)
    }

    package func prepare(_ request: ExchangeRequest) throws(ExchangeError) -> PreparedExchange<Details> {
        guard let call = ModelCall(path: request.path), request.method.uppercased() == "POST" else {
            let exchange = try plainHTTP.prepare(request)
            return exchange.with(details: .plain(exchange.details))
        }
        let parsed = try request.jsonBody(errorType: "INVALID_ARGUMENT")
        guard case .object = parsed else {
            throw ExchangeError(
                status: 400,
                type: "INVALID_ARGUMENT",
                message: "The request body must be a JSON object."
            )
        }
        let (restBody, upstreamBody) = redaction.redact(
            body: parsed,
            original: request.body,
            upstreamKey: request.upstreamKey
        )
        let (_, upstreamQuery) = redaction.redact(query: request.query, upstreamKey: request.upstreamKey)
        let body = Self.sdkCall(restBody: restBody.objectValue ?? JSONObject(), model: call.model)
        let identity = RequestIdentity.inference(method: "POST", url: call.url, body: body, testID: request.testID)
        let recorderRequest = RecorderRequest(
            identity: identity,
            testID: request.testID,
            summary: RequestSummary(method: "POST", url: call.url, model: call.model)
        )
        let sse = request.query?.split(separator: "&").contains("alt=sse") ?? false
        return PreparedExchange(
            request: request,
            recorderRequest: recorderRequest,
            recordedBody: body,
            upstreamBody: upstreamBody,
            upstreamQuery: upstreamQuery,
            details: .model(call, sse: sse)
        )
    }

    /// The SDK call a REST body came from: `contents` as they are, and everything else (the
    /// fields of `generationConfig`, then `systemInstruction`, `tools`, `safetySettings`, ...) as
    /// the `config`, all in the SDK's snake_case.
    static func sdkCall(restBody: JSONObject, model: String) -> JSONValue {
        var config = JSONObject()
        func add(_ fields: JSONObject) {
            guard case .object(let converted) = GeminiKeyCase.snake(.object(fields)) else { return }
            for (key, value) in converted.members { config[key] = value }
        }
        for name in ["generationConfig", "generation_config"] {
            if case .object(let generation)? = restBody[name] { add(generation) }
        }
        for (key, value) in restBody.members
        where !["contents", "model", "generationConfig", "generation_config"].contains(key) {
            add([key: value])
        }
        return [
            "model": .string(model), "contents": GeminiKeyCase.snake(restBody["contents"] ?? .array([])),
            "config": .object(config),
        ]
    }

    package func recording(for exchange: PreparedExchange<Details>, live: LiveOutcome) -> Recording {
        switch exchange.details {
        case .plain(let details):
            return plainHTTP.recording(for: exchange.with(details: details), live: live)
        case .model(let call, _):
            return Recording.inference(
                testID: exchange.request.testID,
                method: "POST",
                url: call.url,
                body: exchange.recordedBody,
                endpoint: call.endpoint,
                model: call.model,
                providerMetadata: ["provider": .string(call.provider)],
                outcome: live.outcome,
                extraResponseKeys: live.extraResponseKeys
            )
        }
    }

    // MARK: Live responses

    package func liveResponse(
        for exchange: PreparedExchange<Details>,
        status: Int,
        contentType: String?
    ) -> LiveResponse {
        let (call, sse): (ModelCall, Bool)
        switch exchange.details {
        case .plain(let details):
            return plainHTTP.liveResponse(
                for: exchange.with(details: details),
                status: status,
                contentType: contentType
            )
        case .model(let modelCall, let askedForSSE):
            (call, sse) = (modelCall, askedForSSE)
        }
        let provider = call.provider
        if status >= 400 { return .whole { Self.errorOutcome($0, status: status, provider: provider) } }
        let isEventStream = ResponseHeaderPolicy.isEventStream(contentType)
        if isEventStream, sse { return .stream(StreamTranscoder(provider: provider)) }
        let streamEndpoint = call.isStream
        return .whole { Self.bodyOutcome($0, streamEndpoint: streamEndpoint, isEventStream: isEventStream) }
    }

    /// A whole body: a `generateContent` answer, or a stream read whole (a JSON array, or SSE the
    /// client did not ask for), recorded in snake_case.
    static func bodyOutcome(_ bytes: [UInt8], streamEndpoint: Bool, isEventStream: Bool) -> RecordedOutcome {
        if isEventStream {
            var parser = SSEParser()
            var events = parser.feed(bytes)
            if let last = parser.finish() { events.append(last) }
            let chunks = events.compactMap { event -> JSONValue? in
                guard case .object(let object)? = try? JSONValue(parsing: event.data) else { return nil }
                return GeminiKeyCase.snake(.object(object))
            }
            return .stream(chunks)
        }
        switch (try? JSONValue(parsing: bytes)) ?? .null {
        case .object(let object):
            return .body(GeminiKeyCase.snake(.object(object)))
        case .array(let items) where streamEndpoint:
            return .stream(items.map(GeminiKeyCase.snake))
        default:
            return .body(.string(String(decoding: bytes, as: UTF8.self)))
        }
    }

    /// An SSE stream (`alt=sse`): every event goes to the client as soon as it is complete and
    /// is recorded as one snake_case chunk. Events that are not JSON objects are not recorded,
    /// and so not forwarded either.
    struct StreamTranscoder: APIRecorder.StreamTranscoder {
        let provider: String
        var parser = SSEParser()
        var chunks: [JSONValue] = []
        var offsets = ChunkOffsets()

        var contentType: String { "text/event-stream" }

        mutating func consume(_ bytes: [UInt8]) -> [UInt8] {
            var out: [UInt8] = []
            for event in parser.feed(bytes) { out.append(contentsOf: handle(event)) }
            return out
        }

        private mutating func handle(_ event: SSEEvent) -> [UInt8] {
            guard case .object(let object) = (try? JSONValue(parsing: event.data)) ?? .null else { return [] }
            offsets.markArrival()
            let chunk = GeminiKeyCase.snake(.object(object))
            chunks.append(chunk)
            return GeminiAdapter.event(chunk)
        }

        mutating func finish() -> (tail: [UInt8], outcome: RecordedOutcome) {
            let tail = parser.finish().map { handle($0) } ?? []
            return (tail, .stream(chunks))
        }

        mutating func fail(_ reason: String) -> RecordedOutcome {
            .streamEndedEarly(provider: provider, type: "ConnectionError", reason: reason, chunks: chunks)
        }

        var extraResponseKeys: JSONObject { offsets.responseKeys }
    }

    /// An error status, recorded as the `google.genai.errors.APIError` subclass the SDK raises.
    static func errorOutcome(_ buffer: [UInt8], status: Int, provider: String) -> RecordedOutcome {
        let parsed = (try? JSONValue(parsing: buffer)) ?? .string(String(decoding: buffer, as: UTF8.self))
        let error = parsed["error"]
        let message =
            "\(status) \(error?["status"]?.stringValue ?? GeminiAdapter.statusName(status)). \(PythonRepr.repr(parsed))"
        return .exception(
            RecordedException(
                provider: provider,
                type: status >= 500 ? "ServerError" : "ClientError",
                message: message,
                statusCode: status,
                body: parsed
            )
        )
    }

    // MARK: Replay

    package func replayPlan(
        for recording: Recording,
        exchange: PreparedExchange<Details>
    ) throws(RecordingError) -> ReplayPlan {
        let sse: Bool
        switch exchange.details {
        case .plain(let details):
            return try plainHTTP.replayPlan(for: recording, exchange: exchange.with(details: details))
        case .model(_, let askedForSSE):
            sse = askedForSSE
        }
        if let exception = recording.exception, !recording.isStreaming {
            let status = exception.statusCode ?? 500
            var body = exception.body ?? .null
            if body["error"] == nil {
                body = [
                    "error": [
                        "code": .integer(status), "message": .string(exception.message ?? ""),
                        "status": .string(Self.statusName(status)),
                    ]
                ]
            }
            return ReplayPlan(status: status, contentType: "application/json", body: .whole(body.compactBytes()))
        }
        if let chunks = recording.chunks {
            if !sse, !recording.isException {
                return ReplayPlan(
                    status: 200,
                    contentType: "application/json",
                    body: .whole(JSONValue.array(chunks.map(Self.rendered)).compactBytes())
                )
            }
            let frames = chunks.map(Self.event)
            return .recordedStream(frames, contentType: "text/event-stream", of: recording)
        }
        if case .string(let text) = recording.body { return .text(text, status: 200) }
        return ReplayPlan(
            status: 200,
            contentType: "application/json",
            body: .whole(Self.rendered(recording.body).compactBytes())
        )
    }

    /// A stored object as the REST API sends it: camelCase, without what the SDK adds on its
    /// side (`sdk_http_response` holds the HTTP headers it saw; `automatic_function_calling_history`).
    static func rendered(_ stored: JSONValue) -> JSONValue {
        guard case .object(var object) = stored else { return stored }
        object.removeValue(forKey: "sdk_http_response")
        object.removeValue(forKey: "automatic_function_calling_history")
        return GeminiKeyCase.camel(.object(object))
    }

    /// A stored chunk as one SSE event.
    static func event(_ stored: JSONValue) -> [UInt8] {
        SSEEvent(data: String(decoding: rendered(stored).compactBytes(), as: UTF8.self)).encoded
    }

    // MARK: Errors

    /// Google's status name for an HTTP status (`NOT_FOUND`, `INVALID_ARGUMENT`, ...).
    static func statusName(_ status: Int) -> String {
        switch status {
        case 400: return "INVALID_ARGUMENT"
        case 401: return "UNAUTHENTICATED"
        case 403: return "PERMISSION_DENIED"
        case 404: return "NOT_FOUND"
        case 409: return "ABORTED"
        case 413: return "INVALID_ARGUMENT"
        case 429: return "RESOURCE_EXHAUSTED"
        case 499: return "CANCELLED"
        case 501: return "UNIMPLEMENTED"
        case 502, 503: return "UNAVAILABLE"
        case 504: return "DEADLINE_EXCEEDED"
        default: return status >= 500 ? "INTERNAL" : "FAILED_PRECONDITION"
        }
    }

    /// Google's error shape: `{"error": {"code", "message", "status"}}`.
    package func errorBody(_ error: ExchangeError) -> [UInt8] {
        let status = error.type == error.type.uppercased() ? error.type : Self.statusName(error.status)
        let message = error.type == status ? error.message : "\(error.type): \(error.message)"
        var object: JSONObject = [
            "code": .integer(error.status), "message": .string(message), "status": .string(status),
        ]
        for (key, value) in error.details.members { object[key] = value }
        return JSONValue.object(["error": .object(object)]).compactBytes()
    }
}
