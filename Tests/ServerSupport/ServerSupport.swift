public import APIRecorder
public import APIRecorderProxy
public import AsyncHTTPClient
import Foundation
public import HTTPTypes
public import Hummingbird
public import Logging
import NIOCore
import NIOHTTP1
public import Synchronization
@_exported public import TestSupport

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What the test targets that run servers share: one fake upstream, one way to run the proxy, a
/// small client, and gates and flags for timing. (The official SDKs and a real model server are
/// exercised by the Python suite.)

/// A logger that prints nothing unless `API_RECORDER_TEST_LOG` is set.
public let testLogger: Logger = {
    var logger = Logger(label: "api-recorder.tests")
    logger.logLevel = ProcessInfo.processInfo.environment["API_RECORDER_TEST_LOG"] != nil ? .debug : .critical
    return logger
}()

/// Runs `body` with a started application, then stops it.
public func withRunning(
    _ makeApp: (@escaping @Sendable (Int) async -> Void) -> some ApplicationProtocol,
    _ body: (Int) async throws -> Void
) async throws {
    let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
    let app = makeApp { port in continuation.yield(port) }
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await app.runService(gracefulShutdownSignals: []) }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else { return }
        do {
            try await body(port)
        } catch {
            group.cancelAll()
            throw error
        }
        group.cancelAll()
    }
}

// MARK: The proxy

extension ProxyConfiguration {
    /// The proxy as tests run it: a free port, one route `up` to `upstreamPort`'s `/v1` (a closed
    /// port when `nil`), short timeouts.
    public static func test(mode: RecordingMode, root: String, upstreamPort: Int?, pace: ReplayPace = .none) -> Self {
        var configuration = ProxyConfiguration()
        configuration.port = 0
        configuration.mode = mode
        configuration.root = root
        configuration.pace = pace
        configuration.upstreamTimeout = .seconds(5)
        configuration.routes = [ProxyRoute(name: "up", upstream: "http://127.0.0.1:\(upstreamPort ?? 9)/v1")]
        return configuration
    }
}

/// Runs the proxy (``buildApplication(_:logger:onListening:)``, as `serve` does) on a free port.
public func withProxy(_ configuration: ProxyConfiguration, _ body: (Int) async throws -> Void) async throws {
    try await withRunning({ buildApplication(configuration, logger: testLogger, onListening: $0) }, body)
}

/// Runs the proxy with ``ProxyConfiguration/test(mode:root:upstreamPort:pace:)``.
public func withProxy(
    mode: RecordingMode,
    root: String,
    upstreamPort: Int?,
    pace: ReplayPace = .none,
    _ body: (Int) async throws -> Void
) async throws {
    try await withProxy(.test(mode: mode, root: root, upstreamPort: upstreamPort, pace: pace), body)
}

// MARK: The fake upstream

/// An OpenAI-like upstream on port 0 for what a real server cannot do on demand: error statuses,
/// cuts, timing, bodies that are not JSON. Its chat completions echo the last user message, and
/// the prompt picks the behaviour:
///
/// | prompt | answer |
/// |---|---|
/// | `slow` | after 30 s |
/// | `sleep:S` (`sleep:1.5 #3`) | after S seconds |
/// | `rate limit` | 429 in OpenAI's error shape |
/// | `call a tool` | a tool call with a fresh random id |
/// | `not json` | 200 with an HTML body |
/// | streamed | `one `, `two `, then (once ``streamGate`` opens) `three (PROMPT)` and `[DONE]` |
/// | streamed `fail midway` | the connection is cut after `two ` |
/// | streamed `with keep-alive` | a non-JSON `data:` event between the chunks |
///
/// It also serves `GET /v1/items?page=N`, `GET /v1/models` and a Tavily-like `POST /search`.
public final class FakeUpstream: Sendable {
    public let calls = Atomic<Int>(0)
    /// Requests being answered right now, and the most at once.
    public let inFlight = Atomic<Int>(0)
    public let maxInFlight = Atomic<Int>(0)
    /// Holds streams before their last chunk while closed (open by default).
    public let streamGate = AsyncGate()
    public let lastAuthorization = Mutex<String?>(nil)
    public let lastKeyHeaders = Mutex<[String]>([])
    public let lastQuery = Mutex<String?>(nil)
    public let lastBody = Mutex<[UInt8]>([])

    public init() {}

    public func application(onListening: @escaping @Sendable (Int) async -> Void) -> some ApplicationProtocol {
        let router = Router()
        router.post("/v1/chat/completions") { request, _ -> Response in
            let bytes = Array(buffer: try await request.body.collect(upTo: 1 << 24))
            return try await self.counting { try await self.chat(request, bytes) }
        }
        router.get("/v1/items") { request, _ -> Response in
            self.calls.add(1, ordering: .relaxed)
            self.lastQuery.withLock { $0 = request.uri.query }
            return Self.json(["page": .string(request.uri.queryParameters.get("page") ?? "none")])
        }
        router.get("/v1/models") { _, _ -> Response in
            self.calls.add(1, ordering: .relaxed)
            return Self.json([
                "object": "list", "data": [["id": "test-model", "object": "model", "created": 1, "owned_by": "me"]],
            ])
        }
        router.post("/search") { request, _ -> Response in
            self.calls.add(1, ordering: .relaxed)
            self.lastQuery.withLock { $0 = request.uri.query }
            let body = try JSONValue(parsing: Array(buffer: try await request.body.collect(upTo: 1 << 20)))
            return Self.json([
                "query": body["query"] ?? "",
                "results": [["title": "Paris", "url": "https://example.org/paris", "score": 0.91]],
            ])
        }
        return Application(
            router: router,
            configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { await onListening($0.localAddress?.port ?? 0) },
            logger: testLogger
        )
    }

    private func counting(_ answer: () async throws -> Response) async throws -> Response {
        calls.add(1, ordering: .relaxed)
        let now = inFlight.add(1, ordering: .relaxed).newValue
        maxInFlight.max(now, ordering: .relaxed)
        defer { inFlight.subtract(1, ordering: .relaxed) }
        return try await answer()
    }

    private func chat(_ request: Request, _ bytes: [UInt8]) async throws -> Response {
        lastAuthorization.withLock { $0 = request.headers[.authorization] }
        lastKeyHeaders.withLock { keys in
            keys = ["x-goog-api-key", "x-api-key", "api-key"].compactMap {
                HTTPField.Name($0).flatMap { request.headers[$0] }
            }
        }
        lastQuery.withLock { $0 = request.uri.query }
        lastBody.withLock { $0 = bytes }
        let body = try JSONValue(parsing: bytes)
        let prompt = body["messages"]?.arrayValue?.last?["content"]?.stringValue ?? ""
        let model = body["model"] ?? "test-model"
        if prompt == "slow" { try await Task.sleep(for: .seconds(30)) }
        if prompt.hasPrefix("sleep:"),
            let seconds = Double(prompt.dropFirst(6).prefix { $0 != " " })
        {
            try await Task.sleep(for: .milliseconds(Int(seconds * 1000)))
        }
        if prompt == "rate limit" {
            return Self.json(
                [
                    "error": [
                        "message": "Rate limit reached", "type": "requests", "param": nil,
                        "code": "rate_limit_exceeded",
                    ]
                ],
                status: .tooManyRequests
            )
        }
        if prompt == "not json" {
            var headers = HTTPFields()
            headers[.contentType] = "text/html"
            return Response(
                status: .ok,
                headers: headers,
                body: ResponseBody(byteBuffer: ByteBuffer(string: "<html><body>Bad gateway</body></html>"))
            )
        }
        if body["stream"]?.boolValue == true { return stream(prompt: prompt, model: model) }
        let toolCall: JSONValue = [
            "id": .string("call_\(UUID().uuidString)"), "type": "function",
            "function": ["name": "get_weather", "arguments": .string(#"{"location": "Paris"}"#)],
        ]
        let message: JSONValue =
            prompt == "call a tool"
            ? ["role": "assistant", "content": nil, "tool_calls": [toolCall]]
            : ["role": "assistant", "content": .string("echo: \(prompt)")]
        return Self.json([
            "id": .string("chatcmpl-\(UUID().uuidString)"), "object": "chat.completion",
            "created": .integer(Int(Date().timeIntervalSince1970)), "model": model,
            "choices": [
                [
                    "index": 0, "finish_reason": .string(prompt == "call a tool" ? "tool_calls" : "stop"),
                    "message": message,
                ]
            ],
            "usage": ["prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5],
        ])
    }

    private func stream(prompt: String, model: JSONValue) -> Response {
        let gate = streamGate
        var headers = HTTPFields()
        headers[.contentType] = "text/event-stream"
        return Response(
            status: .ok,
            headers: headers,
            body: ResponseBody { writer in
                func chunk(_ delta: JSONValue, finish: JSONValue = nil) -> ByteBuffer {
                    let data: JSONValue = [
                        "id": "chatcmpl-live", "object": "chat.completion.chunk", "created": 1234, "model": model,
                        "choices": [["index": 0, "delta": delta, "finish_reason": finish]],
                    ]
                    return ByteBuffer(bytes: Array("data: ".utf8) + data.compactBytes() + Array("\n\n".utf8))
                }
                try await writer.write(chunk(["role": "assistant", "content": "one "]))
                if prompt == "with keep-alive" { try await writer.write(ByteBuffer(string: "data: keep-alive\n\n")) }
                try await writer.write(chunk(["content": "two "]))
                if prompt == "fail midway" {
                    // Let the two events leave before the connection is cut.
                    try await Task.sleep(for: .milliseconds(200))
                    throw CancellationError()
                }
                await gate.wait()
                try await writer.write(chunk(["content": .string("three (\(prompt))")], finish: "stop"))
                try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
                try await writer.finish(nil)
            }
        )
    }

    public static func json(_ value: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(
            status: status,
            headers: headers,
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: value.compactBytes()))
        )
    }
}

// MARK: A client

/// A small client for the tests, over a client of its own with room for many parallel requests.
public struct TestClient: Sendable {
    public let port: Int
    public static let http: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool = .init(idleTimeout: .seconds(30), concurrentHTTP1ConnectionsPerHostSoftLimit: 256)
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }()

    public init(port: Int) {
        self.port = port
    }

    public struct Reply: Sendable {
        public let status: Int
        public let contentType: String?
        public let headers: [(name: String, value: String)]
        public let body: [UInt8]
        public var json: JSONValue? { try? JSONValue(parsing: body) }
        public var text: String { String(decoding: body, as: UTF8.self) }
    }

    public func send(
        _ method: HTTPRequest.Method = .post,
        _ path: String,
        body: [UInt8]? = nil,
        headers: [(String, String)] = [],
        timeout: TimeAmount = .seconds(30)
    ) async throws -> Reply {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
        request.method = .init(rawValue: method.rawValue)
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        let response = try await Self.http.execute(request, timeout: timeout)
        var collected = try await response.body.collect(upTo: 1 << 26)
        return Reply(
            status: Int(response.status.code),
            contentType: response.headers.first(name: "content-type"),
            headers: response.headers.map { ($0.name, $0.value) },
            body: collected.readBytes(length: collected.readableBytes) ?? []
        )
    }

    public func chat(
        _ prompt: String,
        stream: Bool = false,
        testID: String? = "tests/proxy/test_chat.py::test_it",
        timeout: TimeAmount = .seconds(30)
    ) async throws -> Reply {
        try await send(
            .post,
            "/up/chat/completions",
            body: chatBody(prompt, stream: stream),
            headers: testID.map { [("X-Test-ID", $0)] } ?? [],
            timeout: timeout
        )
    }
}

/// A chat-completion request body.
public func chatBody(_ prompt: String, stream: Bool = false, model: String = "test-model") -> [UInt8] {
    let body: JSONValue = [
        "model": .string(model), "messages": [["role": "user", "content": .string(prompt)]], "stream": .bool(stream),
    ]
    return body.compactBytes()
}

/// The content deltas of an SSE chat-completion stream, joined.
public func streamedText(_ bytes: [UInt8]) -> String {
    String(decoding: bytes, as: UTF8.self).split(separator: "\n").compactMap { line -> String? in
        guard line.hasPrefix("data: {"), let value = try? JSONValue(parsing: String(line.dropFirst(6))) else {
            return nil
        }
        return value["choices"]?.arrayValue?.first?["delta"]?["content"]?.stringValue
    }.joined()
}

/// Spells a JSON literal where Swift needs the type named.
public func json(_ value: JSONValue) -> JSONValue { value }

// MARK: Timing

/// A one-shot gate: `wait()` suspends until `open()`; open by default unless `close()` was called.
public final class AsyncGate: Sendable {
    private let state = Mutex<(open: Bool, waiters: [CheckedContinuation<Void, Never>])>((true, []))

    public init() {}

    public func close() { state.withLock { $0.open = false } }

    public func open() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.open = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    public func wait() async {
        await withCheckedContinuation { continuation in
            let resumeNow = state.withLock { state -> Bool in
                if state.open { return true }
                state.waiters.append(continuation)
                return false
            }
            if resumeNow { continuation.resume() }
        }
    }
}

extension ProxyConfiguration {
    /// A copy changed by `change`.
    public func with(_ change: (inout Self) -> Void) -> Self {
        var copy = self
        change(&copy)
        return copy
    }
}

// MARK: Raw connections

/// A plain TCP connection to 127.0.0.1, for what an HTTP client will not send: malformed requests,
/// headers a byte at a time, connections left idle.
public final class RawConnection {
    private let descriptor: Int32

    /// Connects to `port`.
    public init(port: Int) throws {
        #if canImport(Glibc)
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        descriptor = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard descriptor >= 0 else { throw RawConnectionError("socket: \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard result == 0 else {
            close(descriptor)
            throw RawConnectionError("connect: \(errno)")
        }
    }

    deinit { close(descriptor) }

    /// Sends bytes; returns false when the peer has closed the connection.
    @discardableResult
    public func send(_ bytes: [UInt8]) -> Bool {
        var sent = 0
        while sent < bytes.count {
            let count = bytes.withUnsafeBytes { buffer in
                #if canImport(Glibc)
                Glibc.send(descriptor, buffer.baseAddress! + sent, buffer.count - sent, Int32(MSG_NOSIGNAL))
                #else
                Darwin.send(descriptor, buffer.baseAddress! + sent, buffer.count - sent, 0)
                #endif
            }
            if count <= 0 { return false }
            sent += count
        }
        return true
    }

    public func send(_ text: String) -> Bool { send(Array(text.utf8)) }

    /// Ends the sending side (the peer reads end of input), keeping the connection open for reading.
    public func finishSending() {
        shutdown(descriptor, Int32(SHUT_WR))
    }

    /// Reads until the peer closes the connection or `timeout` passes; returns what came, and
    /// whether the connection was closed.
    public func readUntilClosed(timeout: Duration) -> (bytes: [UInt8], closed: Bool) {
        let deadline = ContinuousClock.now + timeout
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while ContinuousClock.now < deadline {
            var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            let left = deadline - ContinuousClock.now
            let milliseconds = Int32(
                max(1, left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000)
            )
            guard poll(&poller, 1, milliseconds) > 0 else { continue }
            let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if count <= 0 { return (received, true) }
            received += buffer[0..<count]
        }
        return (received, false)
    }
}

/// A raw connection that could not be made.
public struct RawConnectionError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

// MARK: An upstream that answers early

/// A raw HTTP/1.1 upstream on 127.0.0.1 that answers before it has read the whole request, as
/// real servers do with limits: a request head larger than `headLimit` gets `431` once that many
/// bytes have arrived, a body larger than `bodyLimit` gets `413` right after the head, and in
/// both cases the connection is closed with the rest unread. Other requests get a small chat
/// completion on a kept-alive connection, so the next request reuses a pooled connection.
public final class EarlyAnsweringUpstream: @unchecked Sendable {
    public let port: Int
    private let listener: Int32
    private let state = Mutex<(served: Int, refused: Int, stopped: Bool)>((0, 0, false))

    /// Requests answered normally, and requests answered early.
    public var served: Int { state.withLock { $0.served } }
    public var refused: Int { state.withLock { $0.refused } }

    public init(headLimit: Int = 8192, bodyLimit: Int = 1 << 20) throws {
        #if canImport(Glibc)
        listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        listener = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        var one: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let socket = listener
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(socket, pointer, length) == 0 && listen(socket, 16) == 0
                    && getsockname(socket, pointer, &length) == 0
            }
        }
        guard bound else { throw RawConnectionError("could not listen: \(errno)") }
        port = Int(UInt16(bigEndian: address.sin_port))
        startAccepting(headLimit: headLimit, bodyLimit: bodyLimit)
    }

    private func startAccepting(headLimit: Int, bodyLimit: Int) {
        Thread.detachNewThread { [self] in
            while true {
                let connection = accept(listener, nil, nil)
                if connection < 0 { return }
                Thread.detachNewThread { self.serve(connection, headLimit: headLimit, bodyLimit: bodyLimit) }
            }
        }
    }

    deinit { stop() }

    /// Stops accepting connections.
    public func stop() {
        let first = state.withLock { state -> Bool in
            defer { state.stopped = true }
            return !state.stopped
        }
        if first {
            shutdown(listener, Int32(SHUT_RDWR))
            close(listener)
        }
    }

    private func serve(_ connection: Int32, headLimit: Int, bodyLimit: Int) {
        defer { close(connection) }
        var pending: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        func read() -> Bool {
            let count = buffer.withUnsafeMutableBytes { recv(connection, $0.baseAddress, $0.count, 0) }
            if count <= 0 { return false }
            pending += buffer[0..<count]
            return true
        }
        func answer(_ status: String, _ body: String, close: Bool) {
            let head = "HTTP/1.1 \(status)\r\ncontent-type: application/json\r\ncontent-length: \(body.utf8.count)\r\n"
            let bytes = Array((head + (close ? "connection: close\r\n" : "") + "\r\n" + body).utf8)
            _ = bytes.withUnsafeBytes { raw in
                #if canImport(Glibc)
                Glibc.send(connection, raw.baseAddress, raw.count, Int32(MSG_NOSIGNAL))
                #else
                Darwin.send(connection, raw.baseAddress, raw.count, 0)
                #endif
            }
        }
        let terminator: [UInt8] = Array("\r\n\r\n".utf8)
        while true {
            var headEnd: Int?
            while headEnd == nil {
                if let end = Self.find(terminator, in: pending) {
                    headEnd = end
                } else if pending.count > headLimit {
                    state.withLock { $0.refused += 1 }
                    answer("431 Request Header Fields Too Large", #"{"error": "header too large"}"#, close: true)
                    return
                } else if !read() {
                    return
                }
            }
            guard let headEnd else { return }
            let head = String(decoding: pending[..<headEnd], as: UTF8.self).lowercased()
            let length =
                head.split(separator: "\r\n").first { $0.hasPrefix("content-length:") }
                .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
            pending.removeFirst(headEnd + terminator.count)
            if length > bodyLimit {
                state.withLock { $0.refused += 1 }
                answer("413 Payload Too Large", #"{"error": "body too large"}"#, close: true)
                return
            }
            while pending.count < length { if !read() { return } }
            pending.removeFirst(length)
            state.withLock { $0.served += 1 }
            answer(
                "200 OK",
                #"{"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m", "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}]}"#,
                close: false
            )
        }
    }

    private static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for start in 0...(haystack.count - needle.count)
        where haystack[start..<(start + needle.count)].elementsEqual(needle) {
            return start
        }
        return nil
    }
}

/// Sends `bytes` on a new raw connection to `port` and reads until it closes or `timeout` passes,
/// on a thread of its own: a blocking read on the concurrency pool's few threads would starve the
/// in-process proxy that is to answer it.
/// - Parameter finishSending: end the sending side after `bytes`, as a client cut short does.
public func rawExchange(
    port: Int,
    _ bytes: [UInt8],
    timeout: Duration = .seconds(5),
    finishSending: Bool = false
) async throws -> (bytes: [UInt8], closed: Bool) {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread {
            do {
                let connection = try RawConnection(port: port)
                _ = connection.send(bytes)
                if finishSending { connection.finishSending() }
                continuation.resume(returning: connection.readUntilClosed(timeout: timeout))
            } catch {
                continuation.resume(throwing: error)
            }
        }
    }
}
