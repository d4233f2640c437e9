public import Foundation
import Synchronization

#if canImport(FoundationNetworking)
public import FoundationNetworking
#endif

/// A `URLProtocol` that records and replays `URLSession` requests: async `data(for:)`, data
/// tasks, and streams, whose chunks reach a data delegate one by one as they arrive (also on
/// Linux, where FoundationNetworking has no `bytes(for:)`; see ``Foundation/URLSession/chunks(for:)``).
///
/// Its handlers run on URLSession's own threads, outside the test's task, and FoundationNetworking
/// does not show a session's extra headers to protocol classes, so each session that
/// ``RecordingScope/sessionConfiguration(_:)`` sets up gets a protocol class of its own (a
/// specialisation of a generic subclass) that names its scope. Installed globally
/// (``installGlobally()``), it finds the scope of a request by its `X-Test-ID` header, as the
/// proxy does, or takes the one test scope running.
public class RecordingURLProtocol: URLProtocol {
    /// The registry token of the scope this class serves; `nil` for the global class.
    class var scopeToken: String? { nil }

    private let loading = LoadingTask()

    /// Registers the protocol for every session that consults the global list (`URLSession.shared`
    /// among them). Prefer per-session installation for parallel tests. On Linux,
    /// FoundationNetworking puts its own HTTP protocol first once the process has made a
    /// URLSession, so call this before that (`.recording(globalURLProtocol: true)` does, when the
    /// test plan is prepared).
    public static func installGlobally() {
        _ = URLProtocol.registerClass(RecordingURLProtocol.self)
    }

    public static func uninstallGlobally() {
        URLProtocol.unregisterClass(RecordingURLProtocol.self)
    }

    public override class func canInit(with request: URLRequest) -> Bool {
        guard let scheme = request.url?.scheme?.lowercased(), scheme == "http" || scheme == "https" else {
            return false
        }
        if scopeToken != nil { return true }
        return RecordingScope.soleRunning().count > 0
    }

    public override class func canonicalRequest(for request: URLRequest) -> URLRequest { request }

    public override func startLoading() {
        let request = self.request
        let scope: RecordingScope
        if let token = Self.scopeToken {
            guard let registered = RecordingScope.registered(token) else {
                return fail(
                    "The recording scope of this URLSession has ended (RecordingScope.end()); create the session inside the test."
                )
            }
            scope = registered
        } else if let testID = request.value(forHTTPHeaderField: "X-Test-ID"),
            let named = RecordingScope.running(testID: testID)
        {
            scope = named
        } else {
            let (sole, count) = RecordingScope.soleRunning()
            guard let sole else {
                return fail(
                    "\(count) recording scopes are running at once, so a globally installed RecordingURLProtocol cannot tell which test sent this request; "
                        + "create the session with RecordingScope.current!.sessionConfiguration() instead."
                )
            }
            scope = sole
        }
        guard let url = request.url else { return fail("The request has no URL.") }
        let headers = (request.allHTTPHeaderFields ?? [:]).map { (name: $0.key, value: $0.value) }
        let body = Self.body(of: request)
        let incremental = deliversIncrementally
        // URLProtocol and its client are not Sendable, but Foundation allows calling the client
        // from any thread; the task is the only code that uses them while loading.
        let loader = UncheckedSendable((protocol: self, client: self.client))
        let task = Task {
            let (this, client) = loader.value
            let response = await scope.perform(
                method: request.httpMethod ?? "GET",
                url: url.absoluteString,
                headers: headers,
                body: body
            )
            var fields: [String: String] = [:]
            for (name, value) in response.headers { fields[name] = value }
            guard
                let head = HTTPURLResponse(
                    url: url,
                    statusCode: response.status,
                    httpVersion: "HTTP/1.1",
                    headerFields: fields
                )
            else { return }
            client?.urlProtocol(this, didReceive: head, cacheStoragePolicy: .notAllowed)
            do {
                var whole = Data()
                for try await chunk in response.body {
                    if Task.isCancelled { return }
                    if incremental {
                        client?.urlProtocol(this, didLoad: Data(chunk))
                    } else {
                        whole.append(contentsOf: chunk)
                    }
                }
                if !incremental, !whole.isEmpty { client?.urlProtocol(this, didLoad: whole) }
                client?.urlProtocolDidFinishLoading(this)
            } catch {
                client?.urlProtocol(this, didFailWithError: URLError(.networkConnectionLost))
            }
        }
        loading.set(task)
    }

    /// Whether body chunks may go to the client one by one. FoundationNetworking keeps only the
    /// last chunk a protocol delivers for tasks with completion handlers (`data(for:)` among
    /// them), so those get the body in one piece; tasks whose session calls a delegate get it as
    /// it arrives. The task's kind is read from FoundationNetworking's task registry by
    /// reflection; when that fails, chunks go one by one, as Apple's Foundation handles.
    private var deliversIncrementally: Bool {
        #if canImport(FoundationNetworking)
        guard let task, let session = Self.member(task, "session").flatMap(Self.unwrapped),
            let registry = Self.member(session, "taskRegistry"),
            let behaviours = Self.member(registry, "behaviours") as? [Int: Any],
            let behaviour = behaviours[task.taskIdentifier]
        else { return true }
        let kind = String(describing: behaviour)
        return !(kind.hasPrefix("dataCompletionHandler") || kind.hasPrefix("downloadCompletionHandler"))
        #else
        return true
        #endif
    }

    /// A stored property of `value` or of its superclasses, by name.
    private static func member(_ value: Any, _ name: String) -> Any? {
        var mirror: Mirror? = Mirror(reflecting: value)
        while let current = mirror {
            if let child = current.children.first(where: { $0.label == name }) { return child.value }
            mirror = current.superclassMirror
        }
        return nil
    }

    private static func unwrapped(_ value: Any) -> Any? {
        let mirror = Mirror(reflecting: value)
        guard mirror.displayStyle == .optional else { return value }
        return mirror.children.first?.value
    }

    public override func stopLoading() {
        loading.cancel()
    }

    private func fail(_ message: String) {
        client?.urlProtocol(
            self,
            didFailWithError: URLError(.resourceUnavailable, userInfo: [NSLocalizedDescriptionKey: message])
        )
    }

    /// The body, whether the session kept it as data or turned it into a stream.
    private static func body(of request: URLRequest) -> [UInt8] {
        if let data = request.httpBody { return [UInt8](data) }
        guard let stream = request.httpBodyStream else { return [] }
        stream.open()
        defer { stream.close() }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = stream.read(&buffer, maxLength: buffer.count)
            if count <= 0 { break }
            bytes += buffer[0..<count]
        }
        return bytes
    }

    /// The task that loads, cancelled by `stopLoading`.
    private final class LoadingTask: @unchecked Sendable {
        private let lock = NSLock()
        private var task: Task<Void, Never>?

        func set(_ task: Task<Void, Never>) {
            lock.withLock { self.task = task }
        }

        func cancel() {
            lock.withLock { task }?.cancel()
        }
    }
}

/// A value handed across concurrency domains on the caller's word that it is used safely.
struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}

extension RecordingScope {
    /// `base` set up so that this scope records and replays the session's requests.
    public func sessionConfiguration(_ base: URLSessionConfiguration = .ephemeral) -> URLSessionConfiguration {
        let configuration = base
        let token = register()
        configuration.protocolClasses =
            [ScopedProtocolClasses.make(token: token)] + (configuration.protocolClasses ?? [])
        return configuration
    }

    /// A session whose requests this scope records and replays.
    public func urlSession(delegate: (any URLSessionDelegate)? = nil) -> URLSession {
        URLSession(configuration: sessionConfiguration(), delegate: delegate, delegateQueue: nil)
    }
}

extension URLSession {
    /// The response and its body chunk by chunk as it arrives: `bytes(for:)` for every platform
    /// (FoundationNetworking on Linux has none). The session's configuration (protocol classes,
    /// headers) applies.
    public func chunks(for request: URLRequest) async throws -> (URLResponse, AsyncThrowingStream<Data, any Error>) {
        let delegate = ChunkDelegate()
        let session = URLSession(configuration: configuration, delegate: delegate, delegateQueue: nil)
        session.dataTask(with: request).resume()
        session.finishTasksAndInvalidate()
        let response = try await delegate.response()
        return (response, delegate.chunks)
    }
}

/// Turns a data delegate's callbacks into a response and a stream of chunks.
private final class ChunkDelegate: NSObject, URLSessionDataDelegate, @unchecked Sendable {
    let chunks: AsyncThrowingStream<Data, any Error>
    private let continuation: AsyncThrowingStream<Data, any Error>.Continuation
    private let lock = NSLock()
    private var head: Result<URLResponse, any Error>?
    private var waiter: CheckedContinuation<URLResponse, any Error>?

    override init() {
        (chunks, continuation) = AsyncThrowingStream.makeStream()
        super.init()
    }

    func response() async throws -> URLResponse {
        try await withCheckedThrowingContinuation { waiter in
            let ready: Result<URLResponse, any Error>? = lock.withLock {
                if head == nil { self.waiter = waiter }
                return head
            }
            if let ready { waiter.resume(with: ready) }
        }
    }

    private func settle(_ result: Result<URLResponse, any Error>) {
        let waiter: CheckedContinuation<URLResponse, any Error>? = lock.withLock {
            guard head == nil else { return nil }
            head = result
            defer { self.waiter = nil }
            return self.waiter
        }
        waiter?.resume(with: result)
    }

    func urlSession(
        _ session: URLSession,
        dataTask: URLSessionDataTask,
        didReceive response: URLResponse,
        completionHandler: @escaping (URLSession.ResponseDisposition) -> Void
    ) {
        settle(.success(response))
        completionHandler(.allow)
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        continuation.yield(data)
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: (any Error)?) {
        if let error {
            settle(.failure(error))
            continuation.finish(throwing: error)
        } else {
            continuation.finish()
        }
    }
}

/// A protocol class per session scope. Protocol classes are types, not instances, so each scope
/// token gets a distinct specialisation of ``ScopedRecordingURLProtocol``: its type argument spells
/// the slot number in binary (`Bit1<Bit0<End>>` is slot 2), which Swift instantiates at run time.
enum ScopedProtocolClasses {
    private static let slots = Mutex<(next: Int, tokens: [Int: String])>((0, [:]))

    static func make(token: String) -> AnyClass {
        let slot = slots.withLock { state -> Int in
            defer { state.next += 1 }
            state.tokens[state.next] = token
            return state.next
        }
        return protocolClass(slot: slot, type: SlotEnd.self, remaining: slot)
    }

    static func token(slot: Int) -> String? {
        slots.withLock { $0.tokens[slot] }
    }

    private static func protocolClass<S: ScopeSlot>(slot: Int, type: S.Type, remaining: Int) -> AnyClass {
        guard remaining > 0 else { return ScopedRecordingURLProtocol<S>.self }
        return remaining & 1 == 1
            ? protocolClass(slot: slot, type: SlotBit1<S>.self, remaining: remaining >> 1)
            : protocolClass(slot: slot, type: SlotBit0<S>.self, remaining: remaining >> 1)
    }
}

/// A slot number as a type.
protocol ScopeSlot {
    static var number: Int { get }
    static var depth: Int { get }
}

enum SlotEnd: ScopeSlot {
    static var number: Int { 0 }
    static var depth: Int { 0 }
}

/// Appends a 0 bit (the lowest bit comes first, so outer bits are higher).
enum SlotBit0<Lower: ScopeSlot>: ScopeSlot {
    static var number: Int { Lower.number }
    static var depth: Int { Lower.depth + 1 }
}

enum SlotBit1<Lower: ScopeSlot>: ScopeSlot {
    static var number: Int { Lower.number | (1 << Lower.depth) }
    static var depth: Int { Lower.depth + 1 }
}

/// The protocol class of one session's scope.
final class ScopedRecordingURLProtocol<Slot: ScopeSlot>: RecordingURLProtocol {
    override class var scopeToken: String? { ScopedProtocolClasses.token(slot: Slot.number) }
}
