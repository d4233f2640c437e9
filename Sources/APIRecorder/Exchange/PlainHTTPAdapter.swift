/// Plain-HTTP recordings, as the reference stores Anthropic Messages, Gemini interactions and
/// HTTP tools (Tavily search, any JSON-over-HTTP API): the request's full URL, method and JSON
/// payload; the response's status and JSON body, or a stream as its raw SSE lines, blank
/// separators included. Streams and bodies pass to the client byte for byte.
///
/// Secrets never reach a recording or the identity (``SecretRedaction``).
public struct PlainHTTPAdapter: ProviderAdapter {
    public var redaction: SecretRedaction

    public init(redaction: SecretRedaction = SecretRedaction()) {
        self.redaction = redaction
    }

    public func prepare(_ request: ExchangeRequest) throws(ExchangeError) -> PreparedExchange {
        let method = request.method.uppercased()
        let parsed = try request.jsonBody()
        let (payload, upstreamBody) = redaction.redact(body: parsed, original: request.body, upstreamKey: request.upstreamKey)
        let url = request.recordedURL + (redaction.redact(query: request.query).map { "?" + $0 } ?? "")
        let identity = RequestIdentity.http(testID: request.testID, url: url, method: method, payload: payload)
        let recorderRequest = RecorderRequest(
            identity: identity, testID: request.testID, method: method, url: url, model: payload["model"]?.stringValue)
        return PreparedExchange(
            request: request, recorderRequest: recorderRequest, body: payload,
            wantsStream: payload["stream"]?.boolValue ?? false, endpoint: request.path, upstreamBody: upstreamBody)
    }

    public func recording(
        for exchange: PreparedExchange, outcome: RecordedOutcome, extraResponseKeys: JSONObject
    ) -> Recording {
        var status: Int?
        if case .body = outcome { status = extraResponseKeys["status"]?.intValue ?? 200 }
        var extra = extraResponseKeys
        extra.removeValue(forKey: "status")
        return Recording.http(
            testID: exchange.request.testID, url: exchange.recorderRequest.url, method: exchange.recorderRequest.method,
            payload: exchange.body, status: status, outcome: outcome, extraResponseKeys: extra)
    }

    public func transcoder(for exchange: PreparedExchange, status: Int, contentType: String?) -> any LiveTranscoder {
        if let contentType, contentType.lowercased().hasPrefix("text/event-stream"), status < 400 {
            return LineTranscoder()
        }
        return WholeBodyTranscoder(status: status)
    }

    /// A whole body, passed through as it came and recorded as JSON (or text) with its status.
    struct WholeBodyTranscoder: WholeBodyTranscoding {
        let status: Int
        var buffer: [UInt8] = []

        mutating func finish() -> (tail: [UInt8], outcome: RecordedOutcome?) {
            let body = (try? JSONValue(parsing: buffer)) ?? .string(String(decoding: buffer, as: UTF8.self))
            return (buffer, .body(body))
        }


        var extraResponseKeys: JSONObject { ["status": .integer(status)] }
    }

    /// An SSE stream, passed through byte for byte and recorded as its lines.
    struct LineTranscoder: LiveTranscoder {
        var pending: [UInt8] = []
        var lines: [JSONValue] = []
        /// When each event (ended by a blank line) was complete.
        var offsets = ChunkOffsets()

        mutating func consume(_ bytes: [UInt8]) -> [UInt8] {
            for byte in bytes {
                if byte == 0x0A {
                    if pending.last == 0x0D { pending.removeLast() }
                    if pending.isEmpty { offsets.markArrival() }
                    lines.append(.string(String(decoding: pending, as: UTF8.self)))
                    pending.removeAll(keepingCapacity: true)
                } else {
                    pending.append(byte)
                }
            }
            return bytes
        }

        mutating func finish() -> (tail: [UInt8], outcome: RecordedOutcome?) {
            if !pending.isEmpty { lines.append(.string(String(decoding: pending, as: UTF8.self))) }
            return ([], .stream(lines))
        }

        mutating func fail(_ reason: String) -> RecordedOutcome? {
            .streamEndedEarly(provider: nil, type: "ConnectionError", reason: reason, chunks: lines)
        }

        var extraResponseKeys: JSONObject { offsets.responseKeys }
    }

    public func replayPlan(for recording: Recording, exchange: PreparedExchange) -> ReplayPlan {
        if let lines = recording.chunks {
            // Lines back to text, one frame per event (a blank line ends one).
            var frames: [[UInt8]] = []
            var current: [UInt8] = []
            for line in lines {
                let text = line.stringValue ?? ""
                current.append(contentsOf: text.utf8)
                current.append(0x0A)
                if text.isEmpty {
                    frames.append(current)
                    current = []
                }
            }
            if !current.isEmpty { frames.append(current) }
            return .recordedStream(frames, contentType: "text/event-stream", of: recording)
        }
        let body = recording.body
        if case .string(let text) = body {
            return ReplayPlan(status: recording.status ?? 200, contentType: "text/plain; charset=utf-8", body: .whole(Array(text.utf8)))
        }
        return ReplayPlan(status: recording.status ?? 200, contentType: "application/json", body: .whole(body.compactBytes()))
    }

    public func errorBody(_ error: ExchangeError) -> [UInt8] {
        JSONValue.object([
            "type": "error", "error": ["type": .string(error.type), "message": .string(error.message)],
        ]).compactBytes()
    }
}
