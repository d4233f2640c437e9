import APIRecorder
import APIRecorderProxy
import Foundation
import HTTPTypes
import NIOCore
import ServerTestSupport
import Synchronization
import Testing

/// The proxy under parallel load, with failing upstreams and with hostile input, over real sockets.
@Suite("Reliability", .timeLimit(.minutes(2)))
struct ReliabilityTests {
    static let testID = "tests/proxy/test_reliability.py::test_it"

    private func recordings(_ directory: TemporaryDirectory) -> [String] {
        directory.files().filter { $0.hasSuffix(".json") }
    }

    // MARK: Upstream concurrency and timeouts

    @Test func differentRequestsReachTheUpstreamInParallel() async throws {
        let directory = try TemporaryDirectory()
        let upstream = FakeUpstream()
        let clock = ContinuousClock()
        try await withRunning(upstream.application) { upstreamPort in
            let configuration = ProxyConfiguration.test(mode: .record, root: directory.path, upstreamPort: upstreamPort)
                .with { $0.upstreamTimeout = .seconds(4) }
            try await withProxy(configuration) { port in
                let start = clock.now
                let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                    for index in 0..<64 {
                        group.addTask { try await TestClient(port: port).chat("sleep:1.5 #\(index)").status }
                    }
                    return try await group.reduce(into: []) { $0.append($1) }
                }
                let elapsed = clock.now - start
                #expect(statuses == Array(repeating: 200, count: 64))
                #expect(elapsed < .seconds(4), "64 calls of 1.5 s took \(elapsed)")
            }
        }
        #expect(upstream.maxInFlight.load(ordering: .relaxed) == 64)
        #expect(upstream.calls.load(ordering: .relaxed) == 64)
        #expect(recordings(directory).count == 64)
    }

    @Test func theTimeoutRunsFromWhenTheRequestIsSentNotWhileItWaitsForAConnection() async throws {
        let directory = try TemporaryDirectory()
        let upstream = FakeUpstream()
        try await withRunning(upstream.application) { upstreamPort in
            let configuration = ProxyConfiguration.test(mode: .record, root: directory.path, upstreamPort: upstreamPort)
                .with {
                    $0.upstreamConnections = 4
                    $0.upstreamTimeout = .seconds(1.5)
                }
            try await withProxy(configuration) { port in
                // Twelve 0.8 s calls over four connections: the last wait 1.6 s before they are sent.
                let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                    for index in 0..<12 {
                        group.addTask { try await TestClient(port: port).chat("sleep:0.8 #\(index)").status }
                    }
                    return try await group.reduce(into: []) { $0.append($1) }
                }
                #expect(statuses == Array(repeating: 200, count: 12))
            }
        }
        #expect(upstream.maxInFlight.load(ordering: .relaxed) <= 4)
    }

    @Test func identicalRequestsWhoseLeaderTimesOutAllFailTogether() async throws {
        let directory = try TemporaryDirectory()
        let upstream = FakeUpstream()
        let clock = ContinuousClock()
        try await withRunning(upstream.application) { upstreamPort in
            let configuration = ProxyConfiguration.test(
                mode: .recordIfMissing,
                root: directory.path,
                upstreamPort: upstreamPort
            ).with { $0.upstreamTimeout = .seconds(1) }
            try await withProxy(configuration) { port in
                let start = clock.now
                let answers = try await withThrowingTaskGroup(of: (Int, Duration).self) { group in
                    for _ in 0..<8 {
                        group.addTask {
                            let reply = try await TestClient(port: port).chat("slow")
                            return (reply.status, clock.now - start)
                        }
                    }
                    return try await group.reduce(into: []) { $0.append($1) }
                }
                #expect(answers.allSatisfy { $0.0 == 504 }, "\(answers)")
                // A staircase would answer at 1, 2, ... 8 s.
                #expect(answers.allSatisfy { $0.1 < .seconds(3) }, "\(answers.map(\.1))")
            }
        }
        #expect(upstream.calls.load(ordering: .relaxed) == 1)
        #expect(recordings(directory).isEmpty)
    }

    @Test func aRefusedConnectionAnswersAtOnce() async throws {
        let directory = try TemporaryDirectory()
        let clock = ContinuousClock()
        try await withProxy(mode: .record, root: directory.path, upstreamPort: nil) { port in
            let start = clock.now
            let reply = try await TestClient(port: port).chat("hello")
            #expect(reply.status == 502)
            #expect(reply.json?["error"]?["type"] == "upstream_unreachable")
            #expect(reply.json?["error"]?["message"]?.stringValue?.contains("connection refused") == true)
            #expect(clock.now - start < .seconds(1))
        }
        #expect(recordings(directory).isEmpty)
    }

    // MARK: What cannot be saved, or read back

    @Test func testIDsTheFileSystemCannotHoldAreRefusedBeforeTheUpstream() async throws {
        let directory = try TemporaryDirectory()
        let upstream = FakeUpstream()
        try await withRunning(upstream.application) { upstreamPort in
            try await withProxy(mode: .record, root: directory.path, upstreamPort: upstreamPort) { port in
                let testID = "tests/\(String(repeating: "a", count: 5000))/test_x.py::test_y"
                for _ in 0..<3 {
                    let reply = try await TestClient(port: port).chat("hello", testID: testID)
                    #expect(reply.status == 400)
                    #expect(reply.json?["error"]?["type"] == "invalid_test_id")
                }
                let set = try await TestClient(port: port).send(
                    .post,
                    "/__recorder/test",
                    body: JSONValue.object(["test_id": .string(testID)]).compactBytes()
                )
                #expect(set.status == 400)
            }
        }
        #expect(upstream.calls.load(ordering: .relaxed) == 0)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).isEmpty, "no folders are made")
    }

    @Test func corruptRecordingsAnswer500NamingTheFile() async throws {
        let directory = try TemporaryDirectory()
        let upstream = FakeUpstream()
        try await withRunning(upstream.application) { upstreamPort in
            try await withProxy(mode: .record, root: directory.path, upstreamPort: upstreamPort) { port in
                _ = try await TestClient(port: port).chat("hello", testID: Self.testID)
            }
        }
        let file = "\(directory.path)/\(try #require(recordings(directory).first))"
        let text = try String(contentsOfFile: file, encoding: .utf8)
        let broken = text.replacingOccurrences(of: #""is_streaming": false"#, with: #""is_streaming": true"#)
        try broken.write(toFile: file, atomically: true, encoding: .utf8)
        try await withProxy(mode: .replay, root: directory.path, upstreamPort: nil) { port in
            let reply = try await TestClient(port: port).chat("hello", testID: Self.testID)
            #expect(reply.status == 500)
            #expect(reply.json?["error"]?["type"] == "corrupt_recording")
            let message = reply.json?["error"]?["message"]?.stringValue ?? ""
            #expect(message.contains(file) && message.contains("not a list"), "\(message)")
        }
    }

    // MARK: Record and replay look the same

    @Test(arguments: [("not json", false), ("with keep-alive", true)])
    func recordModeShowsWhatReplayWillShow(_ prompt: String, _ stream: Bool) async throws {
        let directory = try TemporaryDirectory()
        var live: TestClient.Reply?
        try await withRunning(FakeUpstream().application) { upstreamPort in
            try await withProxy(mode: .record, root: directory.path, upstreamPort: upstreamPort) { port in
                live = try await TestClient(port: port).chat(prompt, stream: stream, testID: Self.testID)
            }
        }
        let recorded = try #require(live)
        try await withProxy(mode: .replay, root: directory.path, upstreamPort: nil) { port in
            let replayed = try await TestClient(port: port).chat(prompt, stream: stream, testID: Self.testID)
            #expect(replayed.status == recorded.status)
            #expect(replayed.contentType == recorded.contentType)
            #expect(replayed.text == recorded.text)
        }
        #expect(
            !recorded.text.contains("data: keep-alive"),
            "an event the recording cannot hold is not sent live either"
        )
    }

    // MARK: Secrets

    @Test func credentialsAtAnyDepthAndInTheQueryNeverReachARecordingOrAMessage() async throws {
        let directory = try TemporaryDirectory()
        let upstream = FakeUpstream()
        let secret = "sk-nested-\(UUID().uuidString)"
        let body = JSONValue.object([
            "model": "m", "messages": [["role": "user", "content": "hi"]],
            "extra_body": ["api_key": .string(secret), "tools": [["auth": ["token": .string(secret)]]]],
        ]).compactBytes()
        let path = "/up/chat/completions?api_key=\(secret)&key=\(secret)&access_token=\(secret)&page=1"
        try await withRunning(upstream.application) { upstreamPort in
            let configuration = ProxyConfiguration.test(mode: .record, root: directory.path, upstreamPort: upstreamPort)
                .with {
                    $0.routes[0].keyEnvironmentVariable = "UPSTREAM_KEY"
                    $0.environment = ["UPSTREAM_KEY": "real-key"]
                }
            try await withProxy(configuration) { port in
                let reply = try await TestClient(port: port).send(
                    .post,
                    path,
                    body: body,
                    headers: [("X-Test-ID", Self.testID), ("Authorization", "Bearer \(secret)")]
                )
                #expect(reply.status == 200)
            }
        }
        // The real key went upstream in every place the client put its own.
        let sent = upstream.lastBody.withLock { String(decoding: $0, as: UTF8.self) }
        #expect(!sent.contains(secret) && sent.contains("real-key"))
        let query = upstream.lastQuery.withLock { $0 } ?? ""
        #expect(query == "api_key=real-key&key=real-key&access_token=real-key&page=1")
        #expect(upstream.lastAuthorization.withLock { $0 } == "Bearer real-key")
        for file in directory.files() {
            #expect(
                !(try String(contentsOfFile: "\(directory.path)/\(file)", encoding: .utf8)).contains(secret),
                "\(file)"
            )
        }
        // A miss names the request without the secret.
        let other = String(decoding: body, as: UTF8.self).replacingOccurrences(of: "\"hi\"", with: "\"bye\"")
        try await withProxy(mode: .replay, root: directory.path, upstreamPort: nil) { port in
            let miss = try await TestClient(port: port).send(
                .post,
                path,
                body: Array(other.utf8),
                headers: [("X-Test-ID", Self.testID)]
            )
            #expect(miss.status == 404)
            #expect(!miss.text.contains(secret), "\(miss.text)")
            #expect(miss.text.contains("chat/completions?page=1"), "\(miss.text)")
        }
    }

    // MARK: Connection hygiene and the HTTP layer

    @Test func idleConnectionsAndSlowHeadersAreClosed() async throws {
        let directory = try TemporaryDirectory()
        let configuration = ProxyConfiguration.test(mode: .replay, root: directory.path, upstreamPort: nil).with {
            $0.idleTimeout = .milliseconds(600)
            $0.headerTimeout = .milliseconds(400)
        }
        try await withProxy(configuration) { port in
            let idle = try RawConnection(port: port)
            let closedIdle = idle.readUntilClosed(timeout: .seconds(3))
            #expect(closedIdle.closed, "an idle connection is closed")

            let slow = try RawConnection(port: port)
            let clock = ContinuousClock()
            let start = clock.now
            let head = Array("POST /up/chat/completions HTTP/1.1\r\nHost: x\r\nX-Slow: ".utf8)
            var closed = false
            for byte in head + Array(repeating: UInt8(ascii: "a"), count: 40) {
                if !slow.send([byte]) {
                    closed = true
                    break
                }
                try await Task.sleep(for: .milliseconds(50))
                if clock.now - start > .seconds(3) { break }
            }
            let rest = slow.readUntilClosed(timeout: .seconds(2))
            let text = String(decoding: rest.bytes, as: UTF8.self)
            #expect(closed || rest.closed, "a slow header is cut off")
            #expect(clock.now - start < .seconds(2.5))
            if !text.isEmpty {
                #expect(text.hasPrefix("HTTP/1.1 408"), "\(text)")
                #expect(text.contains(#""type":"request_timeout""#))
            }
        }
    }

    @Test(arguments: [
        // Past NIO's own limit (80 KiB) and past the proxy's (32 KiB): 431 either way.
        ("a header over the decoder's limit", String(repeating: "b", count: 100_000)),
        ("a header over the proxy's limit", String(repeating: "b", count: 40_000)),
    ])
    func oversizedHeadsGet431WithAJSONBody(_ name: String, _ header: String) async throws {
        let directory = try TemporaryDirectory()
        try await withProxy(mode: .replay, root: directory.path, upstreamPort: nil) { port in
            let connection = try RawConnection(port: port)
            _ = connection.send("GET /up/models HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: \(header)\r\n\r\n")
            let reply = connection.readUntilClosed(timeout: .seconds(3))
            let text = String(decoding: reply.bytes, as: UTF8.self)
            #expect(text.hasPrefix("HTTP/1.1 431"), "\(name): \(text.prefix(200))")
            let body = text.components(separatedBy: "\r\n\r\n").dropFirst().joined(separator: "\r\n\r\n")
            let error = try JSONValue(parsing: body)["error"]
            #expect(error?["type"] == "request_header_fields_too_large", "\(name): \(body)")
            #expect(reply.closed)
        }
    }

    @Test(arguments: [
        ("a NUL byte in a header", "GET /up/models HTTP/1.1\r\nHost: x\r\nX-Bad: a\u{0}b\r\n\r\n"),
        (
            "malformed chunked encoding",
            "POST /up/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"
        ),
        (
            "both Content-Length and Transfer-Encoding",
            "POST /up/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
        ),
    ])
    func errorsOfTheHTTPLayerGetAJSONBody(_ name: String, _ request: String) async throws {
        let directory = try TemporaryDirectory()
        try await withProxy(mode: .replay, root: directory.path, upstreamPort: nil) { port in
            let connection = try RawConnection(port: port)
            _ = connection.send(request)
            let reply = connection.readUntilClosed(timeout: .seconds(3))
            let text = String(decoding: reply.bytes, as: UTF8.self)
            #expect(text.hasPrefix("HTTP/1.1 400"), "\(name): \(text.prefix(200))")
            let body = text.components(separatedBy: "\r\n\r\n").dropFirst().joined(separator: "\r\n\r\n")
            let error = try JSONValue(parsing: body)["error"]
            #expect(error?["type"] == "invalid_request_error", "\(name): \(body)")
            #expect(error?["message"]?.stringValue?.hasPrefix("The request is not valid HTTP/1.1") == true)
            #expect(reply.closed)
        }
    }
}
