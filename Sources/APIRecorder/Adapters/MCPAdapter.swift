import Foundation

/// MCP tool servers over the streamable HTTP transport: each JSON-RPC request (`initialize`,
/// `tools/list`, `tools/call`, ...) is a plain-HTTP recording identified by its method and params.
///
/// The JSON-RPC `id` and the `Mcp-Session-Id` header change from run to run, so neither is part
/// of the identity: the recorded payload and response messages have no `id`, and the client gets
/// its own `id` back (when recording too), and a replayed `initialize` issues a fresh session id.
/// Notifications and client responses are forwarded when recording but never stored (a replay
/// answers 202), the server-to-client GET stream is not offered on replay (405), and responses that
/// come as SSE are stored as their messages and sent as SSE `message` events.
package struct MCPAdapter: ProviderAdapter {
    /// What `prepare` derived from a request.
    package struct Details: Sendable {
        var method: String
        /// The client's JSON-RPC id, put back into every response message.
        var clientID: JSONValue
        var isInitialize: Bool
    }

    package var redaction: SecretRedaction

    package init(redaction: SecretRedaction = SecretRedaction()) {
        self.redaction = redaction
    }

    package func prepare(_ request: ExchangeRequest) throws(ExchangeError) -> PreparedExchange<Details> {
        let method = request.method.uppercased()
        let url = request.recordedURL
        let message: JSONValue = method == "POST" ? try request.jsonBody(errorType: "parse_error") : .null
        // Only requests (a method and an id) are recorded.
        let rpcMethod = message["method"]?.stringValue
        let isRequest = rpcMethod != nil && message["id"] != nil
        var payload = message.objectValue ?? JSONObject()
        payload.removeValue(forKey: "id")
        let recorded = redaction.redact(body: .object(payload), original: [], upstreamKey: nil).recorded
        let upstreamBody = redaction.redact(body: message, original: request.body, upstreamKey: request.upstreamKey)
            .upstream
        let (_, upstreamQuery) = redaction.redact(query: request.query, upstreamKey: request.upstreamKey)
        let identity = RequestIdentity.http(testID: request.testID, url: url, method: method, payload: recorded)
        let recorderRequest = RecorderRequest(
            identity: identity,
            testID: request.testID,
            summary: RequestSummary(method: method, url: url + (rpcMethod.map { " (\($0))" } ?? ""), model: nil),
            isRecordable: isRequest
        )
        return PreparedExchange(
            request: request,
            recorderRequest: recorderRequest,
            recordedBody: recorded,
            upstreamBody: upstreamBody,
            upstreamQuery: upstreamQuery,
            details: Details(method: method, clientID: message["id"] ?? .null, isInitialize: rpcMethod == "initialize")
        )
    }

    package func recording(for exchange: PreparedExchange<Details>, live: LiveOutcome) -> Recording {
        var status: Int?
        if case .body = live.outcome { status = live.status }
        return Recording.http(
            testID: exchange.request.testID,
            url: exchange.request.recordedURL,
            method: exchange.details.method,
            payload: exchange.recordedBody,
            status: status,
            outcome: live.outcome
        )
    }

    package func liveResponse(
        for exchange: PreparedExchange<Details>,
        status: Int,
        contentType: String?
    ) -> LiveResponse {
        if ResponseHeaderPolicy.isEventStream(contentType), status < 400 {
            return .stream(MessageTranscoder(clientID: exchange.details.clientID))
        }
        return .whole { buffer in
            guard !buffer.isEmpty else { return .body(.null) }
            guard case .object(var object)? = try? JSONValue(parsing: buffer) else {
                return .body(.string(String(decoding: buffer, as: UTF8.self)))
            }
            object.removeValue(forKey: "id")
            return .body(.object(object))
        }
    }

    /// An SSE stream of JSON-RPC messages: each is kept without its id and sent on as a replay
    /// sends it, with the client's id. Events that are not JSON cannot be recorded and are dropped.
    struct MessageTranscoder: StreamTranscoder {
        let clientID: JSONValue
        var parser = SSEParser()
        var messages: [JSONValue] = []

        var contentType: String { "text/event-stream" }

        mutating func consume(_ bytes: [UInt8]) -> [UInt8] {
            var out: [UInt8] = []
            for event in parser.feed(bytes) { out += keep(event.data) }
            return out
        }

        private mutating func keep(_ data: String) -> [UInt8] {
            guard case .object(var object)? = try? JSONValue(parsing: data) else { return [] }
            if object.index(of: "result") != nil || object.index(of: "error") != nil {
                object.removeValue(forKey: "id")
            }
            messages.append(.object(object))
            return MCPAdapter.event(.object(object), clientID: clientID)
        }

        mutating func finish() -> (tail: [UInt8], outcome: RecordedOutcome) {
            let tail = parser.finish().map { keep($0.data) } ?? []
            return (tail, .stream(messages))
        }

        mutating func fail(_ reason: String) -> RecordedOutcome {
            .streamEndedEarly(provider: "mcp", type: "ConnectionError", reason: reason, chunks: messages)
        }

        var extraResponseKeys: JSONObject { JSONObject() }
    }

    /// A response message with the client's id in second place, as JSON-RPC servers write it.
    static func withID(_ message: JSONValue, clientID: JSONValue) -> JSONValue {
        guard case .object(var object) = message,
            object.index(of: "result") != nil || object.index(of: "error") != nil
        else { return message }
        var reordered = JSONObject()
        reordered["jsonrpc"] = object.removeValue(forKey: "jsonrpc") ?? "2.0"
        reordered["id"] = clientID
        for (key, value) in object.members { reordered[key] = value }
        return .object(reordered)
    }

    /// A stored message as one SSE `message` event.
    static func event(_ message: JSONValue, clientID: JSONValue) -> [UInt8] {
        SSEEvent(
            event: "message",
            data: String(decoding: withID(message, clientID: clientID).compactBytes(), as: UTF8.self)
        )
        .encoded
    }

    package func replayPlan(
        for recording: Recording,
        exchange: PreparedExchange<Details>
    ) throws(RecordingError) -> ReplayPlan {
        let clientID = exchange.details.clientID
        var headers: [(name: String, value: String)] = []
        if exchange.details.isInitialize {
            headers.append(("Mcp-Session-Id", UUID().uuidString.lowercased()))
        }
        if let messages = recording.chunks {
            return ReplayPlan(
                status: 200,
                contentType: "text/event-stream",
                body: .stream(
                    frames: messages.map { Self.event($0, clientID: clientID) },
                    gapsMilliseconds: nil,
                    failsAtEnd: recording.isException
                ),
                headers: headers
            )
        }
        if recording.body.isNull {
            return ReplayPlan(status: recording.status ?? 202, contentType: "", body: .whole([]), headers: headers)
        }
        if case .string(let text) = recording.body {
            var plan = ReplayPlan.text(text, status: recording.status ?? 200)
            plan.headers = headers
            return plan
        }
        return ReplayPlan(
            status: recording.status ?? 200,
            contentType: "application/json",
            body: .whole(Self.withID(recording.body, clientID: clientID).compactBytes()),
            headers: headers
        )
    }

    package func localAnswer(for exchange: PreparedExchange<Details>) -> ReplayPlan {
        switch exchange.details.method {
        case "GET":
            return ReplayPlan(status: 405, contentType: "", body: .whole([]))
        case "DELETE":
            return ReplayPlan(status: 200, contentType: "", body: .whole([]))
        default:
            return ReplayPlan(status: 202, contentType: "", body: .whole([]))
        }
    }

    package func errorBody(_ error: ExchangeError) -> [UInt8] {
        var object: JSONObject = ["code": -32603, "message": .string("\(error.type): \(error.message)")]
        // JSON-RPC carries extra facts in the error's `data`.
        if !error.details.isEmpty { object["data"] = .object(error.details) }
        return JSONValue.object(["jsonrpc": "2.0", "id": nil, "error": .object(object)]).compactBytes()
    }
}
