public import AsyncHTTPClient
public import Logging
public import NIOCore
import NIOHTTP1

/// AsyncHTTPClient's request/response API, for code that takes its HTTP client as a parameter:
/// hand it `HTTPClient.shared` in production and a ``RecordingHTTPClient`` in tests.
public protocol HTTPClientExecuting: Sendable {
    func execute(_ request: HTTPClientRequest, timeout: TimeAmount, logger: Logger?) async throws -> HTTPClientResponse
}

extension HTTPClientExecuting {
    /// Executes with a 30-second timeout, as AsyncHTTPClient's own convenience does.
    public func execute(
        _ request: HTTPClientRequest,
        timeout: TimeAmount = .seconds(30)
    ) async throws -> HTTPClientResponse {
        try await execute(request, timeout: timeout, logger: nil)
    }
}

extension HTTPClient: HTTPClientExecuting {}

/// An AsyncHTTPClient stand-in that records and replays: responses (streamed bodies included,
/// chunk by chunk) come from recordings, or from the upstream while they are recorded.
///
/// ```swift
/// @Test(.recording) func answers() async throws {
///     let client = RecordingHTTPClient()          // the running test's scope
///     let response = try await client.execute(request, timeout: .seconds(30))
/// }
/// ```
public struct RecordingHTTPClient: HTTPClientExecuting {
    private let scope: RecordingScope?

    /// A client bound to `scope`, or (by default) to the scope of whichever test uses it.
    public init(scope: RecordingScope? = nil) {
        self.scope = scope
    }

    public func execute(
        _ request: HTTPClientRequest,
        timeout: TimeAmount,
        logger: Logger?
    ) async throws -> HTTPClientResponse {
        guard let scope = scope ?? RecordingScope.current else { throw RecordingScopeError.noScope }
        var body: [UInt8] = []
        if let requestBody = request.body {
            for try await buffer in requestBody { body += Array(buffer: buffer) }
        }
        var scoped = scope
        scoped.upstreamTimeout = timeout
        let response = await scoped.perform(
            method: request.method.rawValue,
            url: request.url,
            headers: request.headers.map { ($0.name, $0.value) },
            body: body
        )
        var headers = HTTPHeaders()
        for (name, value) in response.headers { headers.add(name: name, value: value) }
        let buffers = response.body.map { ByteBuffer(bytes: $0) }
        return HTTPClientResponse(
            version: .http1_1,
            status: HTTPResponseStatus(statusCode: response.status),
            headers: headers,
            body: .stream(buffers)
        )
    }
}
