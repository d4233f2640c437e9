import Testing

@testable import APIRecorder

/// The incremental `text/event-stream` parser every stream transcoder uses.
@Suite("Server-sent events")
struct ServerSentEventsTests {
    /// Feeds `text` in pieces of `size` bytes and returns every event, the unterminated last one included.
    private func events(_ text: String, pieces size: Int) -> [SSEEvent] {
        var parser = SSEParser()
        var events: [SSEEvent] = []
        let bytes = Array(text.utf8)
        var start = 0
        while start < bytes.count {
            events += parser.feed(Array(bytes[start..<min(bytes.count, start + size)]))
            start += size
        }
        if let last = parser.finish() { events.append(last) }
        return events
    }

    @Test(arguments: [1, 2, 3, 7, 1000])
    func eventsAreTheSameHoweverTheBytesAreSplit(_ size: Int) {
        let text = "event: delta\ndata: {\"a\":1}\n\n: a comment\n\ndata: line one\ndata: line two\n\ndata:no space\n\n"
        #expect(
            events(text, pieces: size) == [
                SSEEvent(event: "delta", data: #"{"a":1}"#), SSEEvent(data: "line one\nline two"),
                SSEEvent(data: "no space"),
            ]
        )
    }

    @Test(arguments: ["\r\n", "\r", "\n"])
    func everyLineEndingEndsALine(_ end: String) {
        let text = "data: a\(end)\(end)data: b\(end)\(end)"
        #expect(events(text, pieces: 1) == [SSEEvent(data: "a"), SSEEvent(data: "b")])
    }

    @Test func onlyOneSpaceAfterTheColonIsDroppedAndOtherFieldsAreIgnored() {
        let text = "id: 7\nretry: 10\ndata:  two spaces\n\n"
        #expect(events(text, pieces: 4) == [SSEEvent(data: " two spaces")])
    }

    @Test func anEventWithoutItsClosingBlankLineComesAtTheEnd() {
        #expect(events("data: [DONE]", pieces: 5) == [SSEEvent(data: "[DONE]")])
        #expect(events("", pieces: 1).isEmpty)
    }

    @Test func encodingRoundTrips() {
        let event = SSEEvent(event: "message", data: "a\nb")
        #expect(String(decoding: event.encoded, as: UTF8.self) == "event: message\ndata: a\ndata: b\n\n")
        #expect(events(String(decoding: event.encoded, as: UTF8.self), pieces: 3) == [event])
    }
}
