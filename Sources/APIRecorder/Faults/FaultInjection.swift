/// How the pipeline applies a ``Fault``: which one an exchange gets, the answers that replace an
/// exchange (an error status, a malformed body), and the shaping of a stream (cut, paced).
enum FaultInjection {
    /// The header that sets a fault for one request, in the header form (`status=429; times=2`).
    static let header = "x-recorder-fault"

    /// The fault for `request`: its header's (for this request only), else the next one set for
    /// its test id.
    /// - Throws: ``FaultSpecError`` for a header that cannot be understood.
    static func fault(for request: ExchangeRequest, table: FaultTable) throws(FaultSpecError) -> Fault? {
        if let spec = request.header(header) {
            var fault = try Fault(spec: spec)
            fault.times = nil
            return fault
        }
        return table.take(for: request.testID)
    }

    // MARK: Answers in place of the exchange

    /// The error type of an injected status, as the providers name theirs.
    static func errorType(_ status: Int) -> String {
        switch status {
        case 429: "rate_limit_error"
        case 500: "api_error"
        case 503: "service_unavailable"
        case 529: "overloaded_error"
        default: "injected_fault"
        }
    }

    /// Whether the request asks for a stream, and of which kind.
    static func streamKind(of request: ExchangeRequest) -> EventSplitter.Kind? {
        if request.path.contains("streamGenerateContent") || request.query?.contains("alt=sse") == true {
            return .serverSentEvents
        }
        let stream = (try? request.jsonBody())?["stream"]?.boolValue
        if request.path.hasSuffix("/api/chat") || request.path.hasSuffix("/api/generate") {
            return stream == false ? nil : .lines
        }
        return stream == true ? .serverSentEvents : nil
    }

    /// A 200 answer that a client cannot parse: a truncated JSON object, a stream event that is
    /// not JSON, or an NDJSON line that is not.
    static func malformedAnswer(for request: ExchangeRequest) -> ExchangeResponse {
        let text: String
        let contentType: String
        switch streamKind(of: request) {
        case .serverSentEvents?:
            text = "data: {\"id\": \"api-recorder-malformed\", \"object\": \n\n"
            contentType = "text/event-stream"
        case .lines?:
            text = "{\"model\": \"api-recorder-malformed\", \"message\": \n"
            contentType = "application/x-ndjson"
        case nil:
            text = "{\"id\": \"api-recorder-malformed\", \"object\": "
            contentType = "application/json"
        }
        return ExchangeResponse(
            status: 200,
            headers: ResponseHeaderPolicy.headers(
                contentType: contentType,
                isStream: contentType != "application/json"
            ),
            body: .bytes(Array(text.utf8))
        )
    }

    // MARK: Shaping a stream

    /// The response with its events paced (`eventDelay`) and cut (`cutAfter`) as the fault says.
    /// A cut closes the client's connection at once, while the exchange goes on to its end behind
    /// it (a recording is still completed and saved).
    static func shaped(_ response: ExchangeResponse, by fault: Fault) -> ExchangeResponse {
        guard fault.cutAfter != nil || fault.eventDelay != nil else { return response }
        let contentType = response.header("content-type")?.lowercased() ?? ""
        let kind: EventSplitter.Kind? =
            contentType.hasPrefix("text/event-stream")
            ? .serverSentEvents : contentType.hasPrefix("application/x-ndjson") ? .lines : nil
        var shaped = response
        if fault.cutAfter != nil { shaped.outcome = .fault }
        let inner = response.body
        let cutAfter = fault.cutAfter
        let eventDelay = fault.eventDelay
        shaped.body = .writer { emit in
            let (chunks, continuation) = AsyncThrowingStream<[UInt8], any Error>.makeStream()
            // Not awaited on purpose: after a cut it runs on, so a recording still completes.
            Task {
                do {
                    try await inner.write { continuation.yield($0) }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            guard let kind else {
                // A whole body: cut after half of it (a delay between events has nothing to pace).
                var bytes: [UInt8] = []
                for try await chunk in chunks { bytes += chunk }
                if cutAfter != nil {
                    if bytes.count > 1 { try await emit(Array(bytes.prefix(bytes.count / 2))) }
                    throw InjectedCut()
                }
                try await emit(bytes)
                return
            }
            var splitter = EventSplitter(kind: kind)
            var sent = 0
            func send(_ event: [UInt8]) async throws {
                if let cutAfter, sent >= cutAfter { throw InjectedCut() }
                if let eventDelay, sent > 0 { try await Task.sleep(for: eventDelay) }
                try await emit(event)
                sent += 1
            }
            for try await chunk in chunks {
                for event in splitter.feed(chunk) { try await send(event) }
            }
            if let rest = splitter.finish() { try await send(rest) }
            if let cutAfter, sent >= cutAfter { throw InjectedCut() }
        }
        return shaped
    }
}

/// Where an injected fault cut a response.
struct InjectedCut: Error, CustomStringConvertible {
    var description: String { "api-recorder cut the response here (an injected fault)" }
}

/// Splits a byte stream into events: server-sent events end at a blank line (`\n\n` or
/// `\r\n\r\n`), NDJSON events at each newline.
struct EventSplitter {
    enum Kind { case serverSentEvents, lines }

    let kind: Kind
    private var buffer: [UInt8] = []

    init(kind: Kind) {
        self.kind = kind
    }

    /// The events completed by `chunk`, each with its terminator.
    mutating func feed(_ chunk: [UInt8]) -> [[UInt8]] {
        buffer += chunk
        var events: [[UInt8]] = []
        var start = 0
        var index = 0
        let newline = UInt8(ascii: "\n")
        while index < buffer.count {
            if buffer[index] == newline {
                let ends: Bool
                switch kind {
                case .lines:
                    ends = true
                case .serverSentEvents:
                    // A newline right after another (ignoring a carriage return) ends the event.
                    var previous = index - 1
                    if previous >= start, buffer[previous] == UInt8(ascii: "\r") { previous -= 1 }
                    ends = previous >= start && buffer[previous] == newline
                }
                if ends {
                    events.append(Array(buffer[start...index]))
                    start = index + 1
                }
            }
            index += 1
        }
        buffer.removeFirst(start)
        return events
    }

    /// What is left after the last terminator, if anything.
    mutating func finish() -> [UInt8]? {
        defer { buffer.removeAll() }
        return buffer.isEmpty ? nil : buffer
    }
}
