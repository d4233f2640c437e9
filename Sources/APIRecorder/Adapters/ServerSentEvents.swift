/// One server-sent event.
package struct SSEEvent: Sendable, Equatable {
    /// The `event:` name, when the stream gave one.
    package var event: String?
    /// The `data:` lines joined with newlines.
    package var data: String

    package init(event: String? = nil, data: String) {
        self.event = event
        self.data = data
    }

    /// The event framed as `event: NAME\ndata: ...\n\n`.
    package var encoded: [UInt8] {
        var bytes: [UInt8] = []
        if let event {
            bytes.append(contentsOf: "event: ".utf8)
            bytes.append(contentsOf: event.utf8)
            bytes.append(0x0A)
        }
        for line in data.split(separator: "\n", omittingEmptySubsequences: false) {
            bytes.append(contentsOf: "data: ".utf8)
            bytes.append(contentsOf: line.utf8)
            bytes.append(0x0A)
        }
        bytes.append(0x0A)
        return bytes
    }
}

/// An incremental parser of `text/event-stream` bytes: feed it what arrives, get whole events.
///
/// Lines end with LF, CRLF or CR; a blank line ends an event; `:` lines are comments; one space
/// after a field's colon is dropped, as the SSE specification says.
package struct SSEParser: Sendable {
    private var pending: [UInt8] = []
    private var event: String?
    private var dataLines: [String] = []
    private var sawCarriageReturn = false

    package init() {}

    /// Adds bytes and returns the events they complete.
    package mutating func feed(_ bytes: [UInt8]) -> [SSEEvent] {
        var events: [SSEEvent] = []
        for byte in bytes {
            if sawCarriageReturn {
                sawCarriageReturn = false
                if byte == 0x0A { continue }
            }
            if byte == 0x0A || byte == 0x0D {
                sawCarriageReturn = byte == 0x0D
                if let complete = endLine() { events.append(complete) }
            } else {
                pending.append(byte)
            }
        }
        return events
    }

    /// Ends the stream: returns an event left without its closing blank line, if any.
    package mutating func finish() -> SSEEvent? {
        if !pending.isEmpty { _ = endLine() }
        return dispatch()
    }

    private mutating func endLine() -> SSEEvent? {
        defer { pending.removeAll(keepingCapacity: true) }
        if pending.isEmpty { return dispatch() }
        if pending.first == UInt8(ascii: ":") { return nil }
        let line = String(decoding: pending, as: UTF8.self)
        let field: Substring
        var value: Substring
        if let colon = line.firstIndex(of: ":") {
            field = line[..<colon]
            value = line[line.index(after: colon)...]
            if value.first == " " { value = value.dropFirst() }
        } else {
            field = Substring(line)
            value = ""
        }
        switch field {
        case "event": event = String(value)
        case "data": dataLines.append(String(value))
        default: break
        }
        return nil
    }

    private mutating func dispatch() -> SSEEvent? {
        defer {
            event = nil
            dataLines.removeAll()
        }
        guard !dataLines.isEmpty || event != nil else { return nil }
        return SSEEvent(event: event, data: dataLines.joined(separator: "\n"))
    }
}
