import Foundation

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Splits a `text/event-stream` body, fed in chunks of any size, into the data of its events.
///
/// Lines end with `\n` or `\r\n`; an event's `data:` lines are joined with `\n`, and a blank
/// line ends the event. Other fields (`event:`, `id:`, comments) are ignored.
struct ServerSentEventSplitter {
    private var pending: [UInt8] = []
    private var data: [String] = []

    /// The data of every event that `bytes` completes.
    mutating func feed(_ bytes: some Sequence<UInt8>) -> [String] {
        pending.append(contentsOf: bytes)
        var events: [String] = []
        while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
            var line = pending[..<newline]
            if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
            pending.removeSubrange(...newline)
            if let event = take(line: String(decoding: line, as: UTF8.self)) { events.append(event) }
        }
        return events
    }

    /// The data of an event left unterminated when the body ended.
    mutating func finish() -> String? {
        if !pending.isEmpty {
            let line = String(decoding: pending, as: UTF8.self)
            pending = []
            if let event = take(line: line) { return event }
        }
        return take(line: "")
    }

    private mutating func take(line: String) -> String? {
        if line.isEmpty {
            defer { data = [] }
            return data.isEmpty ? nil : data.joined(separator: "\n")
        }
        if line.hasPrefix("data:") {
            var value = line.dropFirst("data:".count)
            if value.first == " " { value = value.dropFirst() }
            data.append(String(value))
        }
        return nil
    }
}

/// A server-sent-events response that the server reported as an error.
public struct HTTPStatusError: Error, CustomStringConvertible {
    public var status: Int
    public var body: String

    public var description: String { "HTTP \(status): \(body)" }
}

/// Streams the events of one request, as they arrive, through a data delegate: what
/// `URLSession.bytes(for:)` does on Apple platforms, written so that it also works with
/// FoundationNetworking on Linux, which has no `bytes(for:)`.
///
/// A session's delegate is fixed when the session is made, and FoundationNetworking ignores
/// per-task delegates, so the stream runs in a session of its own made from the given session's
/// configuration: its protocol classes, additional headers and timeouts apply.
enum EventStream {
    /// The data of each event of `request`'s response, until the stream ends.
    static func events(
        of request: URLRequest,
        configuration: URLSessionConfiguration
    ) -> AsyncThrowingStream<String, any Error> {
        AsyncThrowingStream { continuation in
            let delegate = Delegate(continuation: continuation)
            let session = URLSession(configuration: configuration, delegate: delegate, delegateQueue: nil)
            let task = session.dataTask(with: request)
            continuation.onTermination = { reason in
                if case .cancelled = reason { task.cancel() }
            }
            task.resume()
            // The session lives until the task ends, then lets go of its delegate.
            session.finishTasksAndInvalidate()
        }
    }

    /// The session's delegate: its callbacks come one at a time on the session's serial queue.
    private final class Delegate: NSObject, URLSessionDataDelegate, @unchecked Sendable {
        private let continuation: AsyncThrowingStream<String, any Error>.Continuation
        private var splitter = ServerSentEventSplitter()
        /// Set when the status is an error: the body is kept for the error instead of parsed.
        private var errorStatus: Int?
        private var errorBody = Data()

        init(continuation: AsyncThrowingStream<String, any Error>.Continuation) {
            self.continuation = continuation
        }

        func urlSession(
            _ session: URLSession,
            dataTask: URLSessionDataTask,
            didReceive response: URLResponse,
            completionHandler: @escaping (URLSession.ResponseDisposition) -> Void
        ) {
            if let http = response as? HTTPURLResponse, !(200..<300).contains(http.statusCode) {
                errorStatus = http.statusCode
            }
            completionHandler(.allow)
        }

        func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
            if errorStatus != nil {
                errorBody.append(data)
                return
            }
            for event in splitter.feed(data) { continuation.yield(event) }
        }

        func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: (any Error)?) {
            if let error {
                continuation.finish(throwing: error)
            } else if let errorStatus {
                continuation.finish(
                    throwing: HTTPStatusError(status: errorStatus, body: String(decoding: errorBody, as: UTF8.self))
                )
            } else {
                if let last = splitter.finish() { continuation.yield(last) }
                continuation.finish()
            }
        }
    }
}
