import APIRecorder
import Foundation

/// A response produced in process: replayed from a recording, or streamed from the upstream
/// while it is recorded. Every hook (URLSession, AsyncHTTPClient, OpenAPI) renders this.
public struct RecordedHTTPResponse: Sendable {
    public var status: Int
    public var headers: [(name: String, value: String)]
    /// The body, chunk by chunk as it arrives (frame by frame for a replayed stream). It fails
    /// where a recorded stream failed (``RecordedStreamFailure``), or where the upstream failed.
    public var body: AsyncThrowingStream<[UInt8], any Error>

    /// The first header named `name`, case-insensitively.
    public func header(_ name: String) -> String? {
        let wanted = name.lowercased()
        return headers.first { $0.name.lowercased() == wanted }?.value
    }

    /// The whole body.
    public func collectBody() async throws -> [UInt8] {
        var bytes: [UInt8] = []
        for try await chunk in body { bytes += chunk }
        return bytes
    }

    /// The pipeline's response as the hooks' common type.
    init(_ response: ExchangeResponse) {
        let body = response.body
        self.init(
            status: response.status,
            headers: response.headers,
            body: AsyncThrowingStream { continuation in
                if let bytes = body.completeBytes {
                    if !bytes.isEmpty { continuation.yield(bytes) }
                    continuation.finish()
                    return
                }
                let pump = Task {
                    do {
                        try await body.write { continuation.yield($0) }
                        continuation.finish()
                    } catch {
                        continuation.finish(throwing: error)
                    }
                }
                continuation.onTermination = { reason in
                    if case .cancelled = reason { pump.cancel() }
                }
            }
        )
    }

    init(status: Int, headers: [(name: String, value: String)], body: AsyncThrowingStream<[UInt8], any Error>) {
        self.status = status
        self.headers = headers
        self.body = body
    }
}

/// The in-process front end: turns a hook's request into the pipeline's, with the scope's test
/// id, and reports a replay miss to the running test. The pipeline does the rest, exactly as for
/// the proxy.
struct InProcessExchange: Sendable {
    let scope: RecordingScope

    func perform(
        method: String,
        url: String,
        headers: [(name: String, value: String)],
        body: [UInt8]
    ) async -> RecordedHTTPResponse {
        let parts = RequestURL(url)
        let request = ExchangeRequest(
            method: method.uppercased(),
            path: parts.path,
            query: parts.query,
            recordedBase: parts.origin,
            headers: headers,
            body: body,
            testID: scope.testID
        )
        let adapter = AdapterSelection.select(scope.adapterKind, forPath: parts.path)
        let upstream = Upstream(baseURL: parts.origin, transport: scope.transport)
        let response = await scope.pipeline.respond(to: request, adapter: adapter, upstream: upstream)
        if let refusal = response.refusal, refusal.code == .recordingNotFound { scope.reportMiss(refusal) }
        return RecordedHTTPResponse(response)
    }
}

/// A URL split the way recordings name it: the origin is the recorded base, the path and
/// query follow (`https://api.openai.com` + `/v1/chat/completions`).
struct RequestURL {
    var origin: String
    var path: String
    var query: String?

    init(_ url: String) {
        var rest = Substring(url)
        if let hash = rest.firstIndex(of: "#") { rest = rest[..<hash] }
        var origin = Substring("")
        if let scheme = rest.range(of: "://") {
            let afterScheme = rest[scheme.upperBound...]
            let pathStart = afterScheme.firstIndex { $0 == "/" || $0 == "?" } ?? afterScheme.endIndex
            origin = rest[..<pathStart]
            rest = rest[pathStart...]
        }
        if let question = rest.firstIndex(of: "?") {
            query = String(rest[rest.index(after: question)...])
            rest = rest[..<question]
        }
        self.origin = String(origin)
        self.path = rest.isEmpty ? "/" : String(rest)
    }
}
