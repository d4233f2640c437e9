public import Foundation
public import HTTPTypes
public import OpenAPIRuntime

/// A swift-openapi-runtime `ClientTransport` that records and replays, for any
/// OpenAPI-generated client (an OpenAI or a tool client generated from its spec):
///
/// ```swift
/// let client = Client(serverURL: url, transport: RecordingClientTransport())
/// ```
///
/// Response bodies stream chunk by chunk, as they arrive or as they were recorded.
public struct RecordingClientTransport: ClientTransport {
    private let scope: RecordingScope?
    /// Request bodies above this size are refused.
    public var maxBodyBytes: Int

    /// A transport bound to `scope`, or (by default) to the scope of whichever test uses it.
    public init(scope: RecordingScope? = nil, maxBodyBytes: Int = 32 * 1024 * 1024) {
        self.scope = scope
        self.maxBodyBytes = maxBodyBytes
    }

    public func send(
        _ request: HTTPRequest,
        body: HTTPBody?,
        baseURL: URL,
        operationID: String
    ) async throws -> (HTTPResponse, HTTPBody?) {
        guard let scope = scope ?? RecordingScope.current else { throw RecordingScopeError.noScope }
        var bytes: [UInt8] = []
        if let body { bytes = try await [UInt8](collecting: body, upTo: maxBodyBytes) }
        var base = baseURL.absoluteString
        while base.hasSuffix("/") { base.removeLast() }
        let url = base + (request.path ?? "")
        let response = await scope.perform(
            method: request.method.rawValue,
            url: url,
            headers: request.headerFields.map { ($0.name.rawName, $0.value) },
            body: bytes
        )
        var fields = HTTPFields()
        for (name, value) in response.headers {
            if let field = HTTPField.Name(name) { fields.append(HTTPField(name: field, value: value)) }
        }
        let chunks = response.body.map { ArraySlice($0) }
        return (
            HTTPResponse(status: .init(code: response.status), headerFields: fields),
            HTTPBody(chunks, length: .unknown, iterationBehavior: .single)
        )
    }
}
