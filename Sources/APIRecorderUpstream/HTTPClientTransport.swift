package import APIRecorder
package import AsyncHTTPClient
import DequeModule
import Foundation
package import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// The upstream transport over AsyncHTTPClient, shared by the proxy and the in-process hooks.
///
/// - Different requests reach one upstream in parallel, up to ``Configuration/connections`` at
///   once (AsyncHTTPClient's own default is 8); more wait here for a free connection, and that wait
///   does not count against the upstream timeout, which starts when the request is sent.
/// - A refused connection fails at once (no retries with back-off), and a host that does not
///   answer fails after ``Configuration/connectTimeout``.
/// - Failures are classified (timeout, unreachable, failed midway, cancelled) so that every front
///   end maps them to the same status.
package final class HTTPClientTransport: UpstreamTransport {
    package struct Configuration: Sendable {
        /// Requests in flight at once to one upstream host.
        package var connections = 64
        /// How long connecting to an upstream may take.
        package var connectTimeout: Duration = .seconds(3)
        /// How long an upstream may go without sending body bytes.
        package var readTimeout: Duration = .seconds(300)

        package init(
            connections: Int = 64,
            connectTimeout: Duration = .seconds(3),
            readTimeout: Duration = .seconds(300)
        ) {
            self.connections = connections
            self.connectTimeout = connectTimeout
            self.readTimeout = readTimeout
        }
    }

    /// A transport for the in-process hooks of every test in the process, never shut down (as
    /// `HTTPClient.shared`), configured as the proxy's default.
    package static let shared = HTTPClientTransport(configuration: Configuration())

    package let client: HTTPClient
    private let ownsClient: Bool
    private let slots: ConnectionSlots
    /// How long the upstream may go without sending body bytes (`nil`: as the client says).
    private let readTimeout: Duration?

    /// A transport over a client of its own, configured for upstreams.
    package init(configuration: Configuration, eventLoopGroup: any EventLoopGroup = HTTPClient.defaultEventLoopGroup) {
        var client = HTTPClient.Configuration()
        // No read timeout of AsyncHTTPClient's own: its idle-read timer (1.37.0) stops the process
        // on a precondition when an upstream answers before the request head has been written,
        // and closes (a 431 to a large head on a pooled connection). ``ReadTimeoutBody`` times
        // the reads instead.
        client.timeout = .init(connect: TimeAmount(configuration.connectTimeout), read: nil)
        client.decompression = .disabled
        client.connectionPool = .init(
            idleTimeout: .seconds(60),
            concurrentHTTP1ConnectionsPerHostSoftLimit: configuration.connections
        )
        client.connectionPool.retryConnectionEstablishment = false
        self.client = HTTPClient(eventLoopGroup: eventLoopGroup, configuration: client)
        self.ownsClient = true
        self.slots = ConnectionSlots(perHost: configuration.connections)
        self.readTimeout = configuration.readTimeout
    }

    /// A transport over `client`, which the caller owns; at most `connections` requests to one
    /// host are in flight at once (match the client's pool).
    package init(client: HTTPClient, connections: Int = 8) {
        self.client = client
        self.ownsClient = false
        self.slots = ConnectionSlots(perHost: connections)
        self.readTimeout = nil
    }

    /// Shuts down the client this transport made (not one it was given).
    package func shutdown() async throws {
        if ownsClient { try await client.shutdown() }
    }

    package func send(_ request: UpstreamRequest, timeout: Duration) async throws(UpstreamError) -> UpstreamResponse {
        var upstream = HTTPClientRequest(url: request.url)
        upstream.method = HTTPMethod(rawValue: request.method)
        upstream.headers = HTTPHeaders(request.headers)
        if !request.body.isEmpty { upstream.body = .bytes(ByteBuffer(bytes: request.body)) }
        let host = Self.hostKey(request.url)

        let slot: ConnectionSlots.Slot
        do {
            slot = try await slots.acquire(host)
        } catch {
            throw UpstreamError(.cancelled, "cancelled while waiting for a connection")
        }
        let response: HTTPClientResponse
        do {
            // The deadline runs from here: the request has a connection of its own to go out on.
            response = try await client.execute(upstream, deadline: .now() + TimeAmount(timeout))
        } catch {
            slot.release()
            throw Self.classify(error, midway: false)
        }
        let headers = response.headers.map { (name: $0.name, value: $0.value) }
        // The slot is held until the body has been read (an HTTP/1 connection is busy until then),
        // and released when the body is dropped unread.
        let body = UpstreamBody(
            ReadTimeoutBody(base: response.body, timeout: readTimeout),
            bytes: { Array(buffer: $0) },
            mapError: { error in
                slot.release()
                return Self.classify(error, midway: true)
            },
            onEnd: { slot.release() }
        )
        return UpstreamResponse(status: Int(response.status.code), headers: headers, body: body)
    }

    /// `scheme://host:port`, the unit AsyncHTTPClient pools connections by.
    static func hostKey(_ url: String) -> String {
        guard let scheme = url.range(of: "://") else { return url }
        let rest = url[scheme.upperBound...]
        let end = rest.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? rest.endIndex
        return String(url[..<end])
    }

    /// What kind of failure an AsyncHTTPClient or NIO error is.
    static func classify(_ error: any Error, midway: Bool) -> UpstreamError {
        if error is CancellationError || Task.isCancelled {
            return UpstreamError(.cancelled, "cancelled")
        }
        if let clientError = error as? HTTPClientError {
            switch clientError {
            case .cancelled:
                return UpstreamError(.cancelled, "cancelled")
            case .deadlineExceeded, .readTimeout, .writeTimeout:
                return UpstreamError(
                    .timedOut,
                    midway ? "no data within the read timeout" : "no answer within the timeout"
                )
            case .connectTimeout, .tlsHandshakeTimeout, .getConnectionFromPoolTimeout:
                return UpstreamError(.unreachable, "the connection could not be made in time")
            case .remoteConnectionClosed:
                return UpstreamError(.failed, "the upstream closed the connection")
            default:
                return UpstreamError(midway ? .failed : .unreachable, "\(clientError)")
            }
        }
        if let connectionError = error as? NIOConnectionError {
            let refused = connectionError.connectionErrors.contains { attempt in
                (attempt.error as? IOError)?.errnoCode == ECONNREFUSED
            }
            if refused { return UpstreamError(.unreachable, "connection refused") }
            if connectionError.dnsAError != nil || connectionError.dnsAAAAError != nil {
                return UpstreamError(.unreachable, "the host name could not be resolved")
            }
            return UpstreamError(.unreachable, "no connection could be made")
        }
        if let ioError = error as? IOError, ioError.errnoCode == ECONNREFUSED {
            return UpstreamError(.unreachable, "connection refused")
        }
        if let channelError = error as? ChannelError, case .connectTimeout = channelError {
            return UpstreamError(.unreachable, "the connection could not be made in time")
        }
        return UpstreamError(midway ? .failed : .unreachable, "\(error)")
    }
}

extension TimeAmount {
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self = .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}

/// Connections per upstream host: a request takes a slot before it is sent and gives it back when
/// its body has been read, so requests beyond the pool wait here, not in AsyncHTTPClient's queue
/// (whose wait would count against their deadline).
final class ConnectionSlots: Sendable {
    /// One request's slot; released once, by its body's end or when dropped.
    final class Slot: Sendable {
        private let slots: ConnectionSlots
        private let host: String
        private let released = Atomic<Bool>(false)

        fileprivate init(slots: ConnectionSlots, host: String) {
            self.slots = slots
            self.host = host
        }

        func release() {
            if released.exchange(true, ordering: .acquiringAndReleasing) { return }
            slots.release(host)
        }

        deinit { release() }
    }

    private struct Waiter {
        let id: UInt64
        let continuation: CheckedContinuation<Void, any Error>
    }

    private struct Host {
        var inUse = 0
        var waiters = Deque<Waiter>()
    }

    private let perHost: Int
    private let state = Mutex<(hosts: [String: Host], nextID: UInt64)>(([:], 0))

    init(perHost: Int) {
        self.perHost = max(1, perHost)
    }

    /// Waits for a free slot for `host`.
    /// - Throws: `CancellationError` when the task is cancelled while it waits.
    func acquire(_ host: String) async throws -> Slot {
        let id = state.withLock { state -> UInt64 in
            defer { state.nextID += 1 }
            return state.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let granted = state.withLock { state -> Bool in
                    var entry = state.hosts[host] ?? Host()
                    defer { state.hosts[host] = entry }
                    if entry.inUse < perHost {
                        entry.inUse += 1
                        return true
                    }
                    entry.waiters.append(Waiter(id: id, continuation: continuation))
                    return false
                }
                if granted { continuation.resume() }
            }
        } onCancel: {
            let cancelled = state.withLock { state -> CheckedContinuation<Void, any Error>? in
                guard var entry = state.hosts[host], let index = entry.waiters.firstIndex(where: { $0.id == id }) else {
                    return nil
                }
                let waiter = entry.waiters.remove(at: index)
                state.hosts[host] = entry
                return waiter.continuation
            }
            cancelled?.resume(throwing: CancellationError())
        }
        return Slot(slots: self, host: host)
    }

    fileprivate func release(_ host: String) {
        let next = state.withLock { state -> CheckedContinuation<Void, any Error>? in
            guard var entry = state.hosts[host] else { return nil }
            defer { state.hosts[host] = entry.inUse == 0 && entry.waiters.isEmpty ? nil : entry }
            if let waiter = entry.waiters.popFirst() { return waiter.continuation }
            entry.inUse -= 1
            return nil
        }
        next?.resume()
    }
}

/// A response body whose every read must bring bytes within `timeout`, else it fails with
/// AsyncHTTPClient's `readTimeout` (and the read is cancelled, which ends the request). Timed
/// here, not by AsyncHTTPClient's own idle-read timer, which can crash the process.
struct ReadTimeoutBody<Base: AsyncSequence & Sendable>: AsyncSequence, Sendable where Base.Element: Sendable {
    let base: Base
    /// `nil`: no timeout of this type's.
    let timeout: Duration?

    func makeAsyncIterator() -> Iterator { Iterator(box: IteratorBox(base.makeAsyncIterator()), timeout: timeout) }

    struct Iterator: AsyncIteratorProtocol {
        let box: IteratorBox
        let timeout: Duration?

        mutating func next() async throws -> Base.Element? {
            let box = self.box
            guard let timeout else { return try await box.next() }
            return try await withThrowingTaskGroup(of: Base.Element?.self) { group in
                group.addTask { try await box.next() }
                group.addTask {
                    try await Task.sleep(for: timeout)
                    throw HTTPClientError.readTimeout
                }
                // The first to finish decides; the other is cancelled (a cancelled read ends the request).
                defer { group.cancelAll() }
                return try await group.next() ?? nil
            }
        }
    }

    /// The base iterator, advanced by one read at a time.
    final class IteratorBox: @unchecked Sendable {
        private var iterator: Base.AsyncIterator

        init(_ iterator: Base.AsyncIterator) { self.iterator = iterator }

        func next() async throws -> Base.Element? { try await iterator.next() }
    }
}
