public import APIRecorder
import APIRecorderUpstream
public import AsyncHTTPClient
import Foundation
public import Logging
public import NIOCore
import Synchronization
import Testing

/// A recorder bound to one test: its test id, recordings root and mode. The `.recording` trait
/// sets one for each test through a task-local (``current``), so tests run in parallel without
/// sharing ids; every hook and ``invokeTool(provider:name:arguments:typeName:_:)`` use it.
public struct RecordingScope: Sendable {
    /// The scope of the running test, set by the `.recording` trait or ``withValue(_:)``.
    @TaskLocal public static var current: RecordingScope?

    public let recorder: Recorder
    /// The test id recordings are filed and hashed under (`nil`: none, as for set-up calls).
    public let testID: String?
    /// The client that reaches upstreams in record and live modes.
    public let httpClient: HTTPClient
    /// How long an upstream may take to send its response head, and each next body bytes.
    public var upstreamTimeout: TimeAmount = .seconds(300)
    /// Which API rules apply to requests (by default chosen by path, as the proxy's `auto` does).
    public var adapterKind: AdapterKind = .auto
    /// How replayed streams are timed.
    public var pace: ReplayPace = .none
    /// Called with a replay miss (the trait fails the running test with its message).
    var onMiss: (@Sendable (RecorderError) -> Void)?
    /// The transport over ``httpClient``, shared by every exchange of the scope.
    let transport: HTTPClientTransport

    /// A scope over `recorder`.
    /// - Parameter httpClient: the client for record and live modes; by default one shared by
    ///   every scope, with 64 connections per upstream and a refused connection failing at once.
    public init(recorder: Recorder, testID: String?, httpClient: HTTPClient? = nil) {
        self.recorder = recorder
        self.testID = testID
        let transport = httpClient.map { HTTPClientTransport(client: $0) } ?? .shared
        self.transport = transport
        self.httpClient = transport.client
    }

    /// A scope over a new recorder of the recordings tree at `root`.
    /// - Parameter mode: the mode; by default read from the environment as `api-recorder serve`
    ///   does (`API_RECORDER_MODE`, `OGX_TEST_INFERENCE_MODE`, ...), replay when unset.
    /// - Parameter logger: where look-ups, misses and writes are logged (debug, warning, info).
    /// - Throws: ``RecordingModeError`` when the environment names no mode.
    public init(
        root: String,
        mode: RecordingMode? = nil,
        testID: String?,
        httpClient: HTTPClient? = nil,
        logger: Logger? = nil
    ) throws {
        let mode = try mode ?? RecordingMode.fromEnvironment(ProcessInfo.processInfo.environment)
        let recorder = Recorder(store: RecordingStore(root: root, logger: logger), mode: mode, logger: logger)
        self.init(recorder: recorder, testID: testID, httpClient: httpClient)
    }

    /// The pipeline every exchange of the scope runs through.
    var pipeline: ExchangePipeline {
        ExchangePipeline(recorder: recorder, pace: pace, upstreamTimeout: .nanoseconds(upstreamTimeout.nanoseconds))
    }

    /// Runs `body` with this scope as ``current``.
    public func withValue<T: Sendable>(_ body: () async throws -> T) async rethrows -> T {
        try await Self.$current.withValue(self, operation: body)
    }

    /// Runs one HTTP exchange through the recorder (the hooks' common path).
    public func perform(
        method: String,
        url: String,
        headers: [(name: String, value: String)],
        body: [UInt8]
    ) async -> RecordedHTTPResponse {
        await InProcessExchange(scope: self).perform(method: method, url: url, headers: headers, body: body)
    }

    func reportMiss(_ error: RecorderError) {
        onMiss?(error)
    }

    /// The exchanges of this scope's test so far, oldest first (the proxy's `GET
    /// /__recorder/journal?test_id=`).
    public var journal: [JournalEntry] { recorder.journal.entries(testID: .some(testID)) }

    // MARK: Tools

    /// Records or replays a tool call under this scope's test id (see
    /// ``Recorder/invokeTool(provider:name:arguments:testID:typeName:_:)``).
    public func invokeTool(
        provider: String,
        name: String,
        arguments: JSONValue,
        typeName: String? = nil,
        _ call: () async throws -> JSONValue
    ) async throws -> JSONValue {
        try await reportingMisses {
            try await recorder.invokeTool(
                provider: provider,
                name: name,
                arguments: arguments,
                testID: testID,
                typeName: typeName,
                call
            )
        }
    }

    /// ``invokeTool(provider:name:arguments:typeName:_:)`` for `Codable` arguments and results.
    public func invokeTool<Arguments: Encodable, Output: Codable>(
        provider: String,
        name: String,
        arguments: Arguments,
        typeName: String? = nil,
        _ call: () async throws -> Output
    ) async throws -> Output {
        try await reportingMisses {
            try await recorder.invokeTool(
                provider: provider,
                name: name,
                arguments: arguments,
                testID: testID,
                typeName: typeName,
                call
            )
        }
    }

    /// Runs `body`, reporting a replay miss it throws to the running test.
    private func reportingMisses<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as RecorderError {
            if error.code == .recordingNotFound { reportMiss(error) }
            throw error
        }
    }

    // MARK: Registration, for URLSession

    /// What ``RecordingURLProtocol`` can find outside the test's task: the scopes of sessions, by
    /// token, and the running scopes (``begin()``), by test id.
    private struct Registration {
        var scope: RecordingScope
        /// Begun: a running test's scope, which a globally installed protocol may serve.
        var running: Bool
    }

    private static let registry = Mutex<[String: Registration]>([:])

    /// Makes this scope visible to a globally installed ``RecordingURLProtocol`` until ``end()``.
    /// The `.recording` trait does this for each test.
    public func begin() {
        _ = register(running: true)
    }

    /// Forgets this scope (and the sessions made from it): their requests fail from now on.
    /// The `.recording` trait does this when its test ends.
    public func end() {
        Self.registry.withLock { registered in
            registered = registered.filter { $0.value.scope.recorder !== recorder }
        }
    }

    /// Registers this scope and returns the token that names it.
    func register(running: Bool = false) -> String {
        let token = UUID().uuidString
        Self.registry.withLock { $0[token] = Registration(scope: self, running: running) }
        return token
    }

    static func registered(_ token: String) -> RecordingScope? {
        registry.withLock { $0[token]?.scope }
    }

    /// The running scope of the test with this id.
    static func running(testID: String) -> RecordingScope? {
        registry.withLock { $0.values.first { $0.running && $0.scope.testID == testID }?.scope }
    }

    /// The running scope when exactly one runs, and how many run.
    static func soleRunning() -> (scope: RecordingScope?, count: Int) {
        registry.withLock { registered in
            let running = registered.values.filter(\.running)
            return (running.count == 1 ? running[0].scope : nil, running.count)
        }
    }
}

/// Records or replays a tool call in the running test's scope.
/// - Throws: `RecordingScopeError` outside a `.recording` scope; otherwise as
///   ``RecordingScope/invokeTool(provider:name:arguments:typeName:_:)``.
public func recordedTool<Arguments: Encodable, Output: Codable>(
    provider: String,
    name: String,
    arguments: Arguments,
    typeName: String? = nil,
    _ call: () async throws -> Output
) async throws -> Output {
    guard let scope = RecordingScope.current else { throw RecordingScopeError.noScope }
    return try await scope.invokeTool(provider: provider, name: name, arguments: arguments, typeName: typeName, call)
}

/// Using a recording hook where no scope is set.
///
/// Compare with the static constants (`error == .noScope`).
public struct RecordingScopeError: Error, Sendable, Equatable, CustomStringConvertible {
    private enum Code: Sendable, Equatable {
        case noScope
    }

    private let code: Code

    /// A hook or `recordedTool` was used outside a `.recording` test or `RecordingScope.withValue`.
    public static let noScope = RecordingScopeError(code: .noScope)

    public var description: String {
        switch code {
        case .noScope:
            return "No recording scope: mark the test with @Test(.recording) (or its suite with @Suite(.recording)), "
                + "or run the code inside RecordingScope.withValue."
        }
    }
}
