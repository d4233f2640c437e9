/// How the pipeline reaches an upstream. The proxy and the in-process hooks share one
/// implementation over AsyncHTTPClient (`APIRecorderUpstream`); tests use in-memory ones.
package protocol UpstreamTransport: Sendable {
    /// Sends `request` and returns once the response head has arrived; the body follows.
    /// - Parameter timeout: how long the upstream may take to send the response head, counted
    ///   from when the request is sent (time spent waiting for a free connection does not count).
    /// - Throws: ``UpstreamError`` saying whether the upstream timed out, could not be reached,
    ///   or the exchange was cancelled.
    func send(_ request: UpstreamRequest, timeout: Duration) async throws(UpstreamError) -> UpstreamResponse
}

/// Where an exchange is forwarded: a base URL, and the transport that reaches it.
package struct Upstream: Sendable {
    /// The route's name, for messages (`nil` in process, where the URL names the upstream).
    package var name: String?
    /// The base URL the request path is appended to (`https://api.openai.com/v1`).
    package var baseURL: String
    package var transport: any UpstreamTransport

    package init(name: String? = nil, baseURL: String, transport: any UpstreamTransport) {
        self.name = name
        self.baseURL = baseURL
        self.transport = transport
    }

    /// The upstream as messages name it: `NAME (URL)`, or the URL.
    var label: String { name.map { "\($0) (\(baseURL))" } ?? baseURL }
}

/// A request as it goes upstream.
package struct UpstreamRequest: Sendable {
    package var method: String
    /// The whole URL, query included.
    package var url: String
    package var headers: [(name: String, value: String)]
    package var body: [UInt8]

    package init(method: String, url: String, headers: [(name: String, value: String)], body: [UInt8]) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
    }
}

/// An upstream's response: its head, and its body as it arrives.
package struct UpstreamResponse: Sendable {
    package var status: Int
    package var headers: [(name: String, value: String)]
    package var body: UpstreamBody

    package init(status: Int, headers: [(name: String, value: String)], body: UpstreamBody) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// The first header named `name`, case-insensitively.
    package func header(_ name: String) -> String? {
        let wanted = name.lowercased()
        return headers.first { $0.name.lowercased() == wanted }?.value
    }
}

/// An upstream response body, chunk by chunk as it arrives. It can be iterated once; a failure
/// midway is thrown as an ``UpstreamError``.
package struct UpstreamBody: AsyncSequence, Sendable {
    package typealias Element = [UInt8]

    private let makeNext: @Sendable () -> @Sendable () async throws -> [UInt8]?

    /// A body read from `sequence`, each element turned into bytes by `bytes`; `onEnd` runs when
    /// it has been read to its end, `mapError` turns a failure midway into an ``UpstreamError``.
    package init<Base: AsyncSequence & Sendable>(
        _ sequence: Base,
        bytes: @escaping @Sendable (Base.Element) -> [UInt8],
        mapError: @escaping @Sendable (any Error) -> UpstreamError,
        onEnd: @escaping @Sendable () -> Void = {}
    ) {
        makeNext = {
            let box = IteratorBox(sequence.makeAsyncIterator())
            return {
                do {
                    guard let element = try await box.next() else {
                        onEnd()
                        return nil
                    }
                    return bytes(element)
                } catch {
                    throw mapError(error)
                }
            }
        }
    }

    /// A body of known chunks, optionally failing after the last one (for tests and local answers).
    package init(chunks: [[UInt8]], failure: UpstreamError? = nil) {
        makeNext = {
            let box = IteratorBox(ChunkList(chunks: chunks, failure: failure).makeAsyncIterator())
            return { try await box.next() }
        }
    }

    package func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(next: makeNext())
    }

    package struct AsyncIterator: AsyncIteratorProtocol {
        let next: @Sendable () async throws -> [UInt8]?

        package mutating func next() async throws -> [UInt8]? {
            try await next()
        }
    }

    /// Holds an iterator for the closure that advances it; one consumer at a time.
    private final class IteratorBox<Iterator: AsyncIteratorProtocol>: @unchecked Sendable {
        private var iterator: Iterator

        init(_ iterator: Iterator) { self.iterator = iterator }

        func next() async throws -> Iterator.Element? {
            try await iterator.next()
        }
    }

    private struct ChunkList: AsyncSequence, Sendable {
        let chunks: [[UInt8]]
        let failure: UpstreamError?

        func makeAsyncIterator() -> Iterator { Iterator(chunks: chunks[...], failure: failure) }

        struct Iterator: AsyncIteratorProtocol, Sendable {
            var chunks: ArraySlice<[UInt8]>
            var failure: UpstreamError?

            mutating func next() async throws -> [UInt8]? {
                if let chunk = chunks.popFirst() { return chunk }
                if let failure {
                    self.failure = nil
                    throw failure
                }
                return nil
            }
        }
    }
}

/// Why an upstream exchange failed.
package struct UpstreamError: Error, Sendable, CustomStringConvertible {
    package enum Kind: Sendable, Equatable {
        /// The upstream did not answer in time (the response head, or the next body bytes).
        case timedOut
        /// No connection could be made (refused, unknown host, TLS failure).
        case unreachable
        /// The connection failed during the exchange.
        case failed
        /// The exchange was cancelled here (the server is shutting down).
        case cancelled
    }

    package var kind: Kind
    /// What happened, in words; never a URL with a query, a header or a body.
    package var reason: String

    package init(_ kind: Kind, _ reason: String) {
        self.kind = kind
        self.reason = reason
    }

    package var description: String { reason }
}
