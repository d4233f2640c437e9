/// Plain-HTTP recordings, as the reference stores Anthropic Messages, Gemini interactions and
/// HTTP tools (Tavily search, any JSON-over-HTTP API): the request's full URL, method and JSON
/// payload; the response's status and JSON body, or a stream as its raw SSE lines, blank
/// separators included.
///
/// Secrets never reach a recording or the identity (``SecretRedaction``).
package struct PlainHTTPAdapter: ProviderAdapter {
    /// What `prepare` derived from a request.
    package struct Details: Sendable {
        /// The recorded URL: the recorded base, the path and the query without credentials.
        var url: String
        var method: String
        /// An Anthropic Messages call, whose `tool_use` ids are made deterministic.
        var isMessages: Bool
    }

    package var redaction: SecretRedaction

    package init(redaction: SecretRedaction = SecretRedaction()) {
        self.redaction = redaction
    }

    package func prepare(_ request: ExchangeRequest) throws(ExchangeError) -> PreparedExchange<Details> {
        let method = request.method.uppercased()
        let parsed = try request.jsonBody()
        let (payload, upstreamBody) = redaction.redact(
            body: parsed,
            original: request.body,
            upstreamKey: request.upstreamKey
        )
        let (recordedQuery, upstreamQuery) = redaction.redact(query: request.query, upstreamKey: request.upstreamKey)
        let url = request.recordedURL + (recordedQuery.map { "?" + $0 } ?? "")
        let identity = RequestIdentity.http(testID: request.testID, url: url, method: method, payload: payload)
        let recorderRequest = RecorderRequest(
            identity: identity,
            testID: request.testID,
            summary: RequestSummary(method: method, url: url, model: payload["model"]?.stringValue)
        )
        return PreparedExchange(
            request: request,
            recorderRequest: recorderRequest,
            recordedBody: payload,
            upstreamBody: upstreamBody,
            upstreamQuery: upstreamQuery,
            details: Details(
                url: url,
                method: method,
                isMessages: method == "POST" && request.path.hasSuffix("/messages")
            )
        )
    }

    package func recording(for exchange: PreparedExchange<Details>, live: LiveOutcome) -> Recording {
        var status: Int?
        if case .body = live.outcome { status = live.status }
        return Recording.http(
            testID: exchange.request.testID,
            url: exchange.details.url,
            method: exchange.details.method,
            payload: exchange.recordedBody,
            status: status,
            outcome: live.outcome,
            extraResponseKeys: live.extraResponseKeys
        )
    }

    package func liveResponse(
        for exchange: PreparedExchange<Details>,
        status: Int,
        contentType: String?
    ) -> LiveResponse {
        let ids =
            exchange.details.isMessages && status < 400
            ? DeterministicIDs(.anthropic, requestHash: exchange.hash, issued: exchange.issuedIDs) : nil
        if ResponseHeaderPolicy.isEventStream(contentType), status < 400 { return .stream(LineTranscoder(ids: ids)) }
        return .whole { bytes in Self.bodyOutcome(bytes, ids: ids) }
    }

    /// A whole body, recorded as JSON (or as text when it is not JSON) with its status.
    static func bodyOutcome(_ bytes: [UInt8], ids: DeterministicIDs?) -> RecordedOutcome {
        guard let value = try? JSONValue(parsing: bytes) else {
            return .body(.string(String(decoding: bytes, as: UTF8.self)))
        }
        guard var ids else { return .body(value) }
        return .body(ids.rewrite(value))
    }

    /// An SSE stream, recorded as its lines. Each line goes to the client as soon as it is
    /// complete, ended by LF as a replay ends it (a CRLF stream reaches the client as LF in both).
    struct LineTranscoder: StreamTranscoder {
        var pending: [UInt8] = []
        var lines: [JSONValue] = []
        /// When each event (ended by a blank line) was complete.
        var offsets = ChunkOffsets()
        /// Rewrites the ids in `data:` lines (Anthropic's `tool_use` ids), if any.
        var ids: DeterministicIDs?

        var contentType: String { "text/event-stream" }

        mutating func consume(_ bytes: [UInt8]) -> [UInt8] {
            var out: [UInt8] = []
            for byte in bytes {
                if byte == 0x0A {
                    if pending.last == 0x0D { pending.removeLast() }
                    if pending.isEmpty { offsets.markArrival() }
                    let line = rewritten(String(decoding: pending, as: UTF8.self))
                    lines.append(.string(line))
                    out += Array(line.utf8) + [0x0A]
                    pending.removeAll(keepingCapacity: true)
                } else {
                    pending.append(byte)
                }
            }
            return out
        }

        mutating func finish() -> (tail: [UInt8], outcome: RecordedOutcome) {
            var tail: [UInt8] = []
            if !pending.isEmpty {
                let line = rewritten(String(decoding: pending, as: UTF8.self))
                lines.append(.string(line))
                tail = Array(line.utf8) + [0x0A]
            }
            return (tail, .stream(lines))
        }

        /// A `data:` line with its ids made deterministic; any other line as it is.
        private mutating func rewritten(_ line: String) -> String {
            guard var ids, line.hasPrefix("data:") else { return line }
            let json = line.dropFirst(5)
            let space = json.hasPrefix(" ") ? " " : ""
            let result = "data:" + space + ids.rewrite(text: String(json.dropFirst(space.count)))
            self.ids = ids
            return result
        }

        mutating func fail(_ reason: String) -> RecordedOutcome {
            .streamEndedEarly(provider: nil, type: "ConnectionError", reason: reason, chunks: lines)
        }

        var extraResponseKeys: JSONObject { offsets.responseKeys }
    }

    /// `prepare` reads the method, path, query, base, body, test id and upstream key only.
    package var preparationFingerprint: Int? { redaction.fingerprint }

    package func replayPlan(
        for recording: Recording,
        exchange: PreparedExchange<Details>
    ) throws(RecordingError) -> ReplayPlan {
        if let lines = recording.chunks {
            // Lines back to text, one frame per event (a blank line ends one).
            var frames: [[UInt8]] = []
            var current: [UInt8] = []
            for (index, line) in lines.enumerated() {
                guard let text = line.stringValue else {
                    throw RecordingError("response.body[\(index)] is not a text line of the stream")
                }
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
        let status = recording.status ?? recording.exception?.statusCode ?? 200
        if case .string(let text) = recording.body { return .text(text, status: status) }
        return ReplayPlan(status: status, contentType: "application/json", body: .whole(recording.body.compactBytes()))
    }

    package func errorBody(_ error: ExchangeError) -> [UInt8] {
        var object: JSONObject = ["type": .string(error.type), "message": .string(error.message)]
        for (key, value) in error.details.members { object[key] = value }
        return JSONValue.object(["type": "error", "error": .object(object)]).compactBytes()
    }
}
