public import APIRecorder
public import AsyncHTTPClient
import Foundation
public import NIOCore
import Synchronization
import Testing

/// A recorder bound to one test: its test id, recordings root and mode. The `.recording` trait
/// sets one for each test through a task-local (``current``), so tests run in parallel without
/// sharing ids; every hook and ``invokeTool(provider:name:arguments:typeName:_:)`` use it.
public struct RecordingScope: Sendable {
    /// The scope of the running test, set by the `.recording` trait or ``withValue(_:)``.
    @TaskLocal public static var current: RecordingScope?

    /// The request header that carries a scope's token through `URLSession`, whose protocol
    /// handlers run outside the test's task and so cannot see ``current``.
    public static let scopeHeader = "X-API-Recorder-Scope"

    public let recorder: Recorder
    /// The test id recordings are filed and hashed under (`nil`: none, as for set-up calls).
    public let testID: String?
    /// The client that reaches upstreams in record and live modes.
    public let httpClient: HTTPClient
    /// How long an upstream may take to answer.
    public var upstreamTimeout: TimeAmount = .seconds(300)
    /// Chooses the provider rules for a request path (by default as the proxy's `auto` does).
    public var adapter: @Sendable (String) -> any ProviderAdapter = AdapterSelection.automatic(forPath:)
    /// Called with a replay miss (the trait fails the running test with its message).
    var onMiss: (@Sendable (RecorderError) -> Void)?

    /// A scope over `recorder`.
    public init(recorder: Recorder, testID: String?, httpClient: HTTPClient = .shared) {
        self.recorder = recorder
        self.testID = testID
        self.httpClient = httpClient
    }

    /// A scope over a new recorder of the recordings tree at `root`.
    /// - Parameter mode: the mode; by default read from the environment as `api-recorder serve`
    ///   does (`API_RECORDER_MODE`, `OGX_TEST_INFERENCE_MODE`, ...), replay when unset.
    /// - Throws: ``RecordingModeError`` when the environment names no mode.
    public init(root: String, mode: RecordingMode? = nil, testID: String?, httpClient: HTTPClient = .shared) throws {
        let mode = try mode ?? RecordingMode.fromEnvironment(ProcessInfo.processInfo.environment)
        self.init(recorder: Recorder(store: RecordingStore(root: root), mode: mode), testID: testID, httpClient: httpClient)
    }

    /// Runs `body` with this scope as ``current``.
    public func withValue<T: Sendable>(_ body: () async throws -> T) async rethrows -> T {
        try await Self.$current.withValue(self, operation: body)
    }

    /// Runs one HTTP exchange through the recorder (the hooks' common path).
    public func perform(
        method: String, url: String, headers: [(name: String, value: String)], body: [UInt8]
    ) async -> RecordedHTTPResponse {
        await InProcessExchange(scope: self).perform(method: method, url: url, headers: headers, body: body)
    }

    func reportMiss(_ error: RecorderError) {
        onMiss?(error)
    }

    // MARK: Tools

    /// Records or replays a tool call under this scope's test id (see
    /// ``Recorder/invokeTool(provider:name:arguments:testID:typeName:_:)``).
    public func invokeTool(
        provider: String, name: String, arguments: JSONValue, typeName: String? = nil,
        _ call: () async throws -> JSONValue
    ) async throws -> JSONValue {
        do {
            return try await recorder.invokeTool(
                provider: provider, name: name, arguments: arguments, testID: testID, typeName: typeName, call)
        } catch let error as RecorderError {
            if error.code == .recordingNotFound { reportMiss(error) }
            throw error
        }
    }

    /// ``invokeTool(provider:name:arguments:typeName:_:)`` for `Codable` arguments and results.
    public func invokeTool<Arguments: Encodable, Output: Codable>(
        provider: String, name: String, arguments: Arguments, typeName: String? = nil,
        _ call: () async throws -> Output
    ) async throws -> Output {
        do {
            return try await recorder.invokeTool(
                provider: provider, name: name, arguments: arguments, testID: testID, typeName: typeName, call)
        } catch let error as RecorderError {
            if error.code == .recordingNotFound { reportMiss(error) }
            throw error
        }
    }

    // MARK: Tokens for URLSession

    /// Scopes by token, for requests that reach ``RecordingURLProtocol`` outside the test's task.
    private static let registry = Mutex<[String: RecordingScope]>([:])

    /// Registers this scope and returns the token that names it in ``scopeHeader``.
    func register() -> String {
        let token = UUID().uuidString
        Self.registry.withLock { $0[token] = self }
        return token
    }

    static func registered(_ token: String) -> RecordingScope? {
        registry.withLock { $0[token] }
    }

    /// A running scope with this test id.
    static func registered(testID: String) -> RecordingScope? {
        registry.withLock { $0.values.first { $0.testID == testID } }
    }

    /// Forgets every token of the scopes over `recorder` (a test's scope has ended).
    static func unregisterAll(of recorder: Recorder) {
        registry.withLock { registered in
            registered = registered.filter { $0.value.recorder !== recorder }
        }
    }

    /// The only scope registered, for globally installed hooks that see no token.
    static func soleRegistered() -> (scope: RecordingScope?, count: Int) {
        registry.withLock { registered in
            let scopes = Set(registered.values.map { ObjectIdentifier($0.recorder) })
            return (scopes.count == 1 ? registered.values.first : nil, scopes.count)
        }
    }
}

/// Records or replays a tool call in the running test's scope.
/// - Throws: `RecordingScopeError` outside a `.recording` scope; otherwise as
///   ``RecordingScope/invokeTool(provider:name:arguments:typeName:_:)``.
public func recordedTool<Arguments: Encodable, Output: Codable>(
    provider: String, name: String, arguments: Arguments, typeName: String? = nil,
    _ call: () async throws -> Output
) async throws -> Output {
    guard let scope = RecordingScope.current else { throw RecordingScopeError.noScope }
    return try await scope.invokeTool(provider: provider, name: name, arguments: arguments, typeName: typeName, call)
}

/// Using a recording hook where no scope is set.
public enum RecordingScopeError: Error, CustomStringConvertible {
    case noScope

    public var description: String {
        "No recording scope: mark the test with @Test(.recording) (or its suite with @Suite(.recording)), or run the code inside RecordingScope.withValue."
    }
}
