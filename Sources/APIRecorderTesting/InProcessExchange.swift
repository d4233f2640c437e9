import APIRecorder
import AsyncHTTPClient
import NIOCore
import NIOHTTP1

/// A response produced in process: replayed from a recording, or streamed from the upstream
/// while it is recorded. Every hook (URLSession, AsyncHTTPClient, OpenAPI) renders this.
public struct RecordedHTTPResponse: Sendable {
    public var status: Int
    public var headers: [(name: String, value: String)]
    /// The body, chunk by chunk as it arrives (frame by frame for a replayed stream). It fails
    /// where a recorded stream failed, or where the upstream failed.
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
}

/// The body of a replayed stream, cut where the recorded stream failed.
public struct ReplayedStreamFailure: Error, CustomStringConvertible {
    public var description: String { "the recorded stream failed here" }
}

/// Runs HTTP exchanges in process with the same rules as the proxy: the shared ``Recorder``
/// decides, the ``ProviderAdapter`` chosen for the path identifies, records and replays, and the
/// upstream (record and live modes) is reached with AsyncHTTPClient, streamed chunk by chunk.
struct InProcessExchange: Sendable {
    let scope: RecordingScope

    /// Runs one exchange. Errors come back as responses in the provider's error shape, as the
    /// proxy sends them; a replay miss is also reported to the scope (it fails the running test).
    func perform(method: String, url: String, headers: [(name: String, value: String)], body: [UInt8]) async -> RecordedHTTPResponse {
        let parts = RequestURL(url)
        let adapter = scope.adapter(parts.path)
        let request = ExchangeRequest(
            method: method.uppercased(), path: parts.path, query: parts.query, recordedBase: parts.origin,
            headers: headers, body: body, testID: scope.testID)
        let exchange: PreparedExchange
        let decision: RecorderDecision
        do {
            exchange = try adapter.prepare(request)
            decision = try await scope.recorder.decide(exchange.recorderRequest)
        } catch let error as ExchangeError {
            return Self.errorResponse(error, adapter: adapter)
        } catch let error as RecorderError {
            if error.code == .recordingNotFound { scope.reportMiss(error) }
            return Self.errorResponse(ExchangeError(error), adapter: adapter)
        } catch {
            return Self.errorResponse(ExchangeError(status: 500, type: "internal_error", message: "\(error)"), adapter: adapter)
        }
        switch decision {
        case .answerLocally:
            return Self.render(adapter.localAnswer(for: exchange))
        case .replay(let hit):
            return Self.render(adapter.replayPlan(for: hit.recording, exchange: exchange))
        case .forward(let record, let flight):
            return await forward(exchange, url: url, adapter: adapter, record: record, flight: flight)
        }
    }

    // MARK: Replay

    static func render(_ plan: ReplayPlan) -> RecordedHTTPResponse {
        var headers = plan.headers
        if !plan.contentType.isEmpty { headers.insert(("Content-Type", plan.contentType), at: 0) }
        let body = AsyncThrowingStream<[UInt8], any Error> { continuation in
            switch plan.body {
            case .whole(let bytes):
                if !bytes.isEmpty { continuation.yield(bytes) }
                continuation.finish()
            case .stream(let frames, _, let failsAtEnd):
                for frame in frames { continuation.yield(frame) }
                continuation.finish(throwing: failsAtEnd ? ReplayedStreamFailure() : nil)
            }
        }
        return RecordedHTTPResponse(status: plan.status, headers: headers, body: body)
    }

    static func errorResponse(_ error: ExchangeError, adapter: any ProviderAdapter) -> RecordedHTTPResponse {
        render(ReplayPlan(status: error.status, contentType: "application/json", body: .whole(adapter.errorBody(error))))
    }

    // MARK: Forwarding

    private func forward(
        _ exchange: PreparedExchange, url: String, adapter: any ProviderAdapter, record: Bool, flight: FlightLease?
    ) async -> RecordedHTTPResponse {
        var upstreamRequest = HTTPClientRequest(url: url)
        upstreamRequest.method = HTTPMethod(rawValue: exchange.request.method)
        upstreamRequest.headers = HTTPHeaders(exchange.request.upstreamHeaders)
        if !exchange.upstreamBody.isEmpty { upstreamRequest.body = .bytes(exchange.upstreamBody) }

        let response: HTTPClientResponse
        do {
            response = try await scope.httpClient.execute(upstreamRequest, timeout: scope.upstreamTimeout)
        } catch {
            await flight?.end()
            scope.recorder.notePassedThrough()
            return Self.errorResponse(
                ExchangeError(status: 502, type: "upstream_unreachable", message: "The upstream \(url) could not be reached: \(error)."),
                adapter: adapter)
        }
        let status = Int(response.status.code)
        let contentType = response.headers.first(name: "content-type")
        var headers: [(name: String, value: String)] = []
        if let contentType { headers.append(("Content-Type", contentType)) }
        if let session = response.headers.first(name: "mcp-session-id") { headers.append(("Mcp-Session-Id", session)) }

        let upstreamBody = response.body
        let recorder = scope.recorder
        let transcoder = adapter.transcoder(for: exchange, status: status, contentType: contentType)
        let body = AsyncThrowingStream<[UInt8], any Error> { continuation in
            let pump = Task {
                guard record else {
                    recorder.notePassedThrough()
                    do {
                        for try await buffer in upstreamBody { continuation.yield(Array(buffer: buffer)) }
                        continuation.finish()
                    } catch {
                        continuation.finish(throwing: error)
                    }
                    await flight?.end()
                    return
                }
                do {
                    // Tee: every complete event goes to the caller as soon as it arrives.
                    try await LiveTee.run(
                        upstreamBody, bytes: { Array(buffer: $0) }, transcoder: transcoder, exchange: exchange,
                        adapter: adapter, recorder: recorder, flight: flight
                    ) { bytes in
                        continuation.yield(bytes)
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { reason in
                if case .cancelled = reason { pump.cancel() }
            }
        }
        return RecordedHTTPResponse(status: status, headers: headers, body: body)
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
