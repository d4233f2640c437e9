import Foundation

/// MCP tool servers over the streamable HTTP transport: each JSON-RPC request (`initialize`,
/// `tools/list`, `tools/call`, ...) is a plain-HTTP recording identified by its method and params.
///
/// The JSON-RPC `id` and the `Mcp-Session-Id` header change from run to run, so neither is part
/// of the identity: the recorded payload and response messages have no `id`, a replay puts the
/// client's own `id` back, and a replayed `initialize` issues a fresh session id. Notifications and
/// client responses are forwarded when recording but never stored (a replay answers 202), the
/// server-to-client GET stream is not offered on replay (405), and responses that come as SSE are
/// stored as their messages and replayed as SSE.
public struct MCPAdapter: ProviderAdapter {
    public init() {}

    public func prepare(_ request: ExchangeRequest) throws(ExchangeError) -> PreparedExchange {
        let method = request.method.uppercased()
        let url = request.recordedURL
        let message: JSONValue = method == "POST" ? try request.jsonBody(errorType: "parse_error") : .null
        // Only requests (a method and an id) are recorded.
        let isRequest = message["method"]?.stringValue != nil && message["id"] != nil
        var payload = message.objectValue ?? JSONObject()
        payload.removeValue(forKey: "id")
        let identity = RequestIdentity.http(testID: request.testID, url: url, method: method, payload: .object(payload))
        let recorderRequest = RecorderRequest(
            identity: identity, testID: request.testID, method: method,
            url: url + (message["method"]?.stringValue.map { " (\($0))" } ?? ""), model: nil, isRecordable: isRequest)
        return PreparedExchange(
            request: request, recorderRequest: recorderRequest, body: .object(payload), wantsStream: false,
            endpoint: request.path, upstreamBody: request.body)
    }

    public func recording(
        for exchange: PreparedExchange, outcome: RecordedOutcome, extraResponseKeys: JSONObject
    ) -> Recording {
        var status: Int?
        if case .body = outcome { status = extraResponseKeys["status"]?.intValue ?? 200 }
        return Recording.http(
            testID: exchange.request.testID, url: exchange.request.recordedURL, method: exchange.recorderRequest.method,
            payload: exchange.body, status: status, outcome: outcome)
    }

    public func transcoder(for exchange: PreparedExchange, status: Int, contentType: String?) -> any LiveTranscoder {
        MessageTranscoder(
            status: status, isStream: contentType?.lowercased().hasPrefix("text/event-stream") == true)
    }

    /// Passes the upstream's bytes through and keeps its JSON-RPC messages, ids removed.
    struct MessageTranscoder: LiveTranscoder {
        let status: Int
        let isStream: Bool
        var buffer: [UInt8] = []
        var parser = SSEParser()
        var messages: [JSONValue] = []

        mutating func consume(_ bytes: [UInt8]) -> [UInt8] {
            if isStream {
                for event in parser.feed(bytes) { keep(event.data) }
            } else {
                buffer.append(contentsOf: bytes)
            }
            return bytes
        }

        private mutating func keep(_ data: String) {
            guard case .object(var object)? = try? JSONValue(parsing: data) else { return }
            if object.index(of: "result") != nil || object.index(of: "error") != nil { object.removeValue(forKey: "id") }
            messages.append(.object(object))
        }

        mutating func finish() -> (tail: [UInt8], outcome: RecordedOutcome?) {
            if isStream {
                if let last = parser.finish() { keep(last.data) }
                return ([], .stream(messages))
            }
            guard !buffer.isEmpty else { return ([], .body(.null)) }
            guard case .object(var object)? = try? JSONValue(parsing: buffer) else {
                return ([], .body(.string(String(decoding: buffer, as: UTF8.self))))
            }
            object.removeValue(forKey: "id")
            return ([], .body(.object(object)))
        }

        mutating func fail(_ reason: String) -> RecordedOutcome? { nil }

        var extraResponseKeys: JSONObject { isStream ? JSONObject() : ["status": .integer(status)] }
    }

    public func replayPlan(for recording: Recording, exchange: PreparedExchange) -> ReplayPlan {
        let clientMessage = try? JSONValue(parsing: exchange.request.body)
        let clientID = clientMessage?["id"] ?? .null
        var headers: [(name: String, value: String)] = []
        if clientMessage?["method"]?.stringValue == "initialize" {
            headers.append(("Mcp-Session-Id", UUID().uuidString.lowercased()))
        }
        func withID(_ message: JSONValue) -> JSONValue {
            guard case .object(var object) = message,
                object.index(of: "result") != nil || object.index(of: "error") != nil
            else { return message }
            var reordered = JSONObject()
            reordered["jsonrpc"] = object.removeValue(forKey: "jsonrpc") ?? "2.0"
            reordered["id"] = clientID
            for (key, value) in object.members { reordered[key] = value }
            return .object(reordered)
        }
        if let messages = recording.chunks {
            let frames = messages.map {
                SSEEvent(event: "message", data: String(decoding: withID($0).compactBytes(), as: UTF8.self)).encoded
            }
            return ReplayPlan(
                status: 200, contentType: "text/event-stream",
                body: .stream(frames: frames, gapsMilliseconds: nil, failsAtEnd: false), headers: headers)
        }
        if recording.body.isNull {
            return ReplayPlan(status: recording.status ?? 202, contentType: "", body: .whole([]), headers: headers)
        }
        return ReplayPlan(
            status: recording.status ?? 200, contentType: "application/json",
            body: .whole(withID(recording.body).compactBytes()), headers: headers)
    }

    public func localAnswer(for exchange: PreparedExchange) -> ReplayPlan {
        switch exchange.request.method.uppercased() {
        case "GET":
            return ReplayPlan(status: 405, contentType: "", body: .whole([]))
        case "DELETE":
            return ReplayPlan(status: 200, contentType: "", body: .whole([]))
        default:
            return ReplayPlan(status: 202, contentType: "", body: .whole([]))
        }
    }

    public func errorBody(_ error: ExchangeError) -> [UInt8] {
        JSONValue.object([
            "jsonrpc": "2.0", "id": nil,
            "error": ["code": -32603, "message": .string("\(error.type): \(error.message)")],
        ]).compactBytes()
    }
}
