import Foundation
import Synchronization
import TestSupport

@testable import APIRecorder

/// An upstream in memory, for the pipeline's unit tests: no sockets. Each request gets the answer
/// `respond` makes for it; a body can be released chunk by chunk to see what the client gets
/// before the upstream has finished.
final class ScriptedTransport: UpstreamTransport {
    /// What the upstream does with one request.
    enum Answer: Sendable {
        case response(status: Int, contentType: String, chunks: [[UInt8]], failure: UpstreamError? = nil)
        /// A response whose body chunks come from a stream the test feeds.
        case streamed(status: Int, contentType: String, body: AsyncThrowingStream<[UInt8], any Error>)
        case failure(UpstreamError)
    }

    let calls = Atomic<Int>(0)
    let requests = Mutex<[UpstreamRequest]>([])
    private let respond: @Sendable (UpstreamRequest) async -> Answer

    init(_ respond: @escaping @Sendable (UpstreamRequest) async -> Answer) {
        self.respond = respond
    }

    /// One answer for every request.
    convenience init(status: Int = 200, contentType: String = "application/json", body: String) {
        self.init { _ in .response(status: status, contentType: contentType, chunks: [Array(body.utf8)]) }
    }

    func send(_ request: UpstreamRequest, timeout: Duration) async throws(UpstreamError) -> UpstreamResponse {
        calls.add(1, ordering: .relaxed)
        requests.withLock { $0.append(request) }
        switch await respond(request) {
        case .response(let status, let contentType, let chunks, let failure):
            return UpstreamResponse(
                status: status,
                headers: [("Content-Type", contentType)],
                body: UpstreamBody(chunks: chunks, failure: failure)
            )
        case .streamed(let status, let contentType, let body):
            return UpstreamResponse(
                status: status,
                headers: [("Content-Type", contentType)],
                body: UpstreamBody(
                    body,
                    bytes: { $0 },
                    mapError: { $0 as? UpstreamError ?? UpstreamError(.failed, "\($0)") }
                )
            )
        case .failure(let error):
            throw error
        }
    }
}

/// A recorder, a pipeline and a transport over a fresh recordings root.
struct PipelineHarness {
    let directory: TemporaryDirectory
    let transport: ScriptedTransport

    init(transport: ScriptedTransport) throws {
        self.directory = try TemporaryDirectory()
        self.transport = transport
    }

    func pipeline(_ mode: RecordingMode) -> ExchangePipeline {
        ExchangePipeline(recorder: Recorder(store: RecordingStore(root: directory.path), mode: mode))
    }

    var upstream: Upstream { Upstream(name: "up", baseURL: "http://upstream.test/v1", transport: transport) }

    /// Sends `request` through a pipeline in `mode` and collects the whole answer.
    func send(
        _ request: ExchangeRequest,
        adapter: any ProviderAdapter,
        mode: RecordingMode,
        pipeline: ExchangePipeline? = nil
    ) async -> Answer {
        let response = await (pipeline ?? self.pipeline(mode)).respond(
            to: request,
            adapter: adapter,
            upstream: upstream
        )
        var bytes: [UInt8] = []
        var failure: (any Error)?
        do {
            try await response.body.write { bytes += $0 }
        } catch {
            failure = error
        }
        return Answer(response: response, body: bytes, failure: failure)
    }

    /// Every recording file under the root.
    var recordings: [String] { directory.files().filter { $0.hasSuffix(".json") } }
}

/// What a client received.
struct Answer {
    let response: ExchangeResponse
    let body: [UInt8]
    /// Where the body was cut, if it was.
    let failure: (any Error)?

    var status: Int { response.status }
    var contentType: String? { response.header("content-type") }
    var text: String { String(decoding: body, as: UTF8.self) }
    var json: JSONValue? { try? JSONValue(parsing: body) }

    /// Status, content type, body and whether it was cut: what a client can tell apart.
    var seenByClient: String {
        "\(status) \(contentType ?? "-") cut=\(failure != nil)\n\(text)"
    }
}

/// A request as a front end would hand it over.
func exchangeRequest(
    _ path: String,
    body: JSONValue? = nil,
    method: String = "POST",
    query: String? = nil,
    testID: String? = "tests/unit/test_pipeline.py::test_it",
    base: String = "http://upstream.test/v1",
    upstreamKey: String? = nil
) -> ExchangeRequest {
    ExchangeRequest(
        method: method,
        path: path,
        query: query,
        recordedBase: base,
        headers: [("Content-Type", "application/json"), ("Authorization", "Bearer sk-client")],
        body: body?.compactBytes() ?? [],
        testID: testID,
        upstreamKey: upstreamKey
    )
}

/// An SSE event's bytes.
func sse(_ data: String, event: String? = nil) -> [UInt8] {
    Array(((event.map { "event: \($0)\n" } ?? "") + "data: \(data)\n\n").utf8)
}
