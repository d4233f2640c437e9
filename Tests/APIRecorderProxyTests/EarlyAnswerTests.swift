import APIRecorder
import APIRecorderProxy
import ServerTestSupport
import Testing

/// Upstreams that answer before they have read the whole request (a `431` to a large head, a
/// `413` to a large body) and close, on a pooled connection: AsyncHTTPClient 1.37.0 crashed the
/// process on the first (a precondition in its idle-read timer), so the proxy refuses large heads
/// itself and does not arm that timer.
@Suite("Early upstream answers", .timeLimit(.minutes(1)))
struct EarlyAnswerTests {
    static let padding = String(repeating: "a", count: 64 * 1024)

    /// A raw request to the proxy's `up` route with one header of `padding` bytes.
    private func paddedRequest(port: Int, padding: Int) -> String {
        let body = String(decoding: chatBody("padded"), as: UTF8.self)
        return "POST /up/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\ncontent-type: application/json\r\n"
            + "x-test-id: tests/proxy/test_early.py::test_it\r\nconnection: close\r\n"
            + "x-padding: \(String(repeating: "a", count: padding))\r\ncontent-length: \(body.utf8.count)\r\n\r\n\(body)"
    }

    @Test(arguments: [RecordingMode.record, .recordIfMissing, .live])
    func aLargeHeadIsRefusedBeforeItIsForwarded(mode: RecordingMode) async throws {
        let directory = try TemporaryDirectory()
        let upstream = try EarlyAnsweringUpstream(headLimit: 8192)
        defer { upstream.stop() }
        let configuration = ProxyConfiguration.test(mode: mode, root: directory.path, upstreamPort: upstream.port)
        try await withProxy(configuration) { port in
            // A normal request first, so that a connection to the upstream is pooled.
            #expect(try await TestClient(port: port).chat("first").status == 200)
            let reply = try await rawExchange(port: port, Array(paddedRequest(port: port, padding: 64 * 1024).utf8))
            let answer = String(decoding: reply.bytes, as: UTF8.self)
            #expect(answer.hasPrefix("HTTP/1.1 431"), "\(answer.prefix(200))")
            #expect(answer.contains(#""type":"request_header_fields_too_large""#), "\(answer.prefix(400))")
            #expect(upstream.refused == 0, "the large head reached the upstream")
            // Still up, and the pooled connection still works.
            #expect(try await TestClient(port: port).chat("after").status == 200)
        }
        #expect(upstream.served == 2)
    }

    @Test func aHeadUnderTheLimitThatTheUpstreamRefusesEarlyIsAnsweredAndTheProxyStaysUp() async throws {
        let directory = try TemporaryDirectory()
        // The upstream's limit is far below the proxy's: the proxy forwards, the upstream answers
        // 431 before it has read the head, and closes.
        let upstream = try EarlyAnsweringUpstream(headLimit: 1024)
        defer { upstream.stop() }
        let configuration = ProxyConfiguration.test(mode: .record, root: directory.path, upstreamPort: upstream.port)
            .with { $0.maxHeaderBytes = 72 * 1024 }
        try await withProxy(configuration) { port in
            for round in 0..<3 {
                #expect(try await TestClient(port: port).chat("first \(round)").status == 200)
                let reply = try await rawExchange(port: port, Array(paddedRequest(port: port, padding: 60 * 1024).utf8))
                let answer = String(decoding: reply.bytes, as: UTF8.self)
                // The upstream's own 431, or a 502 when it closed before its answer could be read.
                #expect(answer.hasPrefix("HTTP/1.1 431") || answer.hasPrefix("HTTP/1.1 502"), "\(answer.prefix(300))")
                #expect(try await TestClient(port: port).chat("after \(round)").status == 200)
            }
        }
        #expect(upstream.refused == 3)
    }

    @Test func aLargeBodyTheUpstreamRefusesEarlyIsAnsweredAndTheProxyStaysUp() async throws {
        let directory = try TemporaryDirectory()
        let upstream = try EarlyAnsweringUpstream(bodyLimit: 1024)
        defer { upstream.stop() }
        let configuration = ProxyConfiguration.test(mode: .record, root: directory.path, upstreamPort: upstream.port)
        try await withProxy(configuration) { port in
            for round in 0..<3 {
                #expect(try await TestClient(port: port).chat("first \(round)").status == 200)
                let big = String(repeating: "b", count: 4 << 20)
                let reply = try await TestClient(port: port).chat("large \(round) \(big)")
                #expect(reply.status == 413 || reply.status == 502, "\(reply.text.prefix(300))")
                #expect(reply.json?["error"] != nil, "\(reply.text.prefix(300))")
                #expect(try await TestClient(port: port).chat("after \(round)").status == 200)
            }
        }
        #expect(upstream.refused == 3)
    }
}
