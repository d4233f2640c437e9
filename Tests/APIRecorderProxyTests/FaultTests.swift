import APIRecorder
import APIRecorderProxy
import AsyncHTTPClient
import Foundation
import HTTPTypes
import NIOCore
import NIOHTTP1
import ServerTestSupport
import Synchronization
import Testing

/// Faults on demand, the journal and the metrics, through the proxy (the official SDKs meet them
/// in the Python suite).
@Suite("Faults, journal and metrics through the proxy", .timeLimit(.minutes(2)))
struct FaultTests {
    private let testID = "tests/test_retries.py::test_it"

    /// Records `prompt` (and a stream of it) through the fake upstream, so that replays can follow.
    private func recorded(_ prompts: [String], stream: Bool = false) async throws -> TemporaryDirectory {
        let directory = try TemporaryDirectory()
        let upstream = FakeUpstream()
        try await withRunning(upstream.application) { upstreamPort in
            try await withProxy(mode: .record, root: directory.path, upstreamPort: upstreamPort) { port in
                for prompt in prompts {
                    let reply = try await TestClient(port: port).chat(prompt, stream: stream, testID: testID)
                    #expect(reply.status == 200)
                }
            }
        }
        return directory
    }

    private func faults(_ client: TestClient, _ faults: JSONValue) async throws -> TestClient.Reply {
        try await client.send(
            .post,
            "/__recorder/faults",
            body: JSONValue.object(["test_id": .string(testID), "faults": faults]).compactBytes()
        )
    }

    @Test func aFaultForTheNextTwoRequestsThenTheRealAnswerIsJournaledAndCounted() async throws {
        let directory = try await recorded(["hello"])
        try await withProxy(mode: .replay, root: directory.path, upstreamPort: nil) { port in
            let client = TestClient(port: port)
            let set = try await faults(client, [["status": 429, "retry_after": 1, "times": 2]])
            #expect(set.json?["faults"]?.arrayValue?.count == 1, "\(set.text)")
            for _ in 0..<2 {
                let limited = try await client.chat("hello", testID: testID)
                #expect(limited.status == 429)
                #expect(limited.headers.contains { $0.name.lowercased() == "retry-after" && $0.value == "1" })
                #expect(limited.json?["error"]?["type"] == "rate_limit_error", "OpenAI's shape: \(limited.text)")
            }
            #expect(try await client.chat("hello", testID: testID).status == 200)
            // Another test's requests are untouched.
            #expect(try await client.chat("hello", testID: "tests/other.py::test_x").status == 404)

            let journal = try #require(try await client.send(.get, "/__recorder/journal?test_id=\(testID)").json)
            let entries = try #require(journal["entries"]?.arrayValue)
            #expect(entries.map { $0["outcome"]?.stringValue } == ["fault", "fault", "replayed"])
            #expect(entries.map { $0["status"]?.intValue } == [429, 429, 200])
            #expect(entries[0]["fault"] == "status=429; retry-after=1; times=2")
            #expect(entries[2]["path"] == "/chat/completions" && entries[2]["route"] == "up")
            #expect(entries[2]["hash"]?.stringValue?.count == 64)
            let all = try await client.send(.get, "/__recorder/journal").json?["entries"]?.arrayValue
            #expect(all?.count == 4 && all?.last?["outcome"] == "missed")

            let report = try await client.send(.get, "/__recorder/report?test_id=\(testID)").json
            #expect(report?["faults"] == 2 && report?["replayed"] == 1)
            let metrics = try await client.send(.get, "/__recorder/metrics")
            #expect(metrics.contentType?.hasPrefix("text/plain") == true)
            #expect(metrics.text.contains(#"api_recorder_requests_total{route="up",outcome="fault"} 2"#))
            #expect(metrics.text.contains(#"api_recorder_requests_total{route="up",outcome="replayed"} 1"#))
            #expect(metrics.text.contains(#"api_recorder_requests_total{route="up",outcome="missed"} 1"#))
            #expect(metrics.text.contains("api_recorder_in_flight_exchanges 0"))

            let cleared = try await client.send(.delete, "/__recorder/faults")
            #expect(cleared.status == 200)
            #expect(try await faults(client, []).json?["faults"] == [])
        }
    }

    @Test func errorsComeInTheProvidersOwnShape() async throws {
        let directory = try TemporaryDirectory()
        var configuration = ProxyConfiguration.test(mode: .replay, root: directory.path, upstreamPort: nil)
        configuration.routes = [
            ProxyRoute(name: "anthropic", upstream: "http://127.0.0.1:9", adapter: .http),
            ProxyRoute(name: "gemini", upstream: "http://127.0.0.1:9", adapter: .gemini),
            ProxyRoute(name: "ollama", upstream: "http://127.0.0.1:9", adapter: .ollama),
        ]
        try await withProxy(configuration) { port in
            let client = TestClient(port: port)
            let overloaded = try await client.send(
                .post,
                "/anthropic/v1/messages",
                body: Array(#"{"model": "m", "max_tokens": 5, "messages": []}"#.utf8),
                headers: [("X-Recorder-Fault", "status=529")]
            )
            #expect(overloaded.status == 529)
            #expect(overloaded.json?["type"] == "error" && overloaded.json?["error"]?["type"] == "overloaded_error")
            let exhausted = try await client.send(
                .post,
                "/gemini/v1beta/models/m:generateContent",
                body: Array(#"{"contents": []}"#.utf8),
                headers: [("X-Recorder-Fault", "status=429")]
            )
            #expect(exhausted.status == 429 && exhausted.json?["error"]?["status"] == "RESOURCE_EXHAUSTED")
            let ollama = try await client.send(
                .post,
                "/ollama/api/chat",
                body: Array(#"{"model": "m", "messages": []}"#.utf8),
                headers: [("X-Recorder-Fault", "status=503")]
            )
            #expect(
                ollama.status == 503 && ollama.json?["error"]?.stringValue?.hasPrefix("service_unavailable") == true
            )
        }
        #expect(directory.files().isEmpty, "faults are never recorded")
    }

    @Test func aMalformedBodyAndABadSpec() async throws {
        let directory = try TemporaryDirectory()
        let upstream = FakeUpstream()
        try await withRunning(upstream.application) { upstreamPort in
            try await withProxy(mode: .record, root: directory.path, upstreamPort: upstreamPort) { port in
                let client = TestClient(port: port)
                let whole = try await client.send(
                    .post,
                    "/up/chat/completions",
                    body: chatBody("hi"),
                    headers: [("X-Recorder-Fault", "malformed"), ("X-Test-ID", testID)]
                )
                #expect(whole.status == 200 && whole.json == nil && whole.contentType == "application/json")
                let stream = try await client.send(
                    .post,
                    "/up/chat/completions",
                    body: chatBody("hi", stream: true),
                    headers: [("X-Recorder-Fault", "malformed")]
                )
                #expect(stream.contentType == "text/event-stream" && stream.text.hasPrefix("data: {"))
                for spec in ["status=abc", "delay=fast", "retry-after=2", "explode", ""] {
                    let bad = try await client.send(
                        .post,
                        "/up/chat/completions",
                        body: chatBody("hi"),
                        headers: [("X-Recorder-Fault", spec)]
                    )
                    #expect(bad.status == 400 && bad.json?["error"]?["type"] == "invalid_fault", "\(spec): \(bad.text)")
                }
                let badJSON = try await faults(client, [["status": 429, "cut": 1]])
                #expect(badJSON.status == 400 && badJSON.text.contains("faults[0]"))
                #expect(upstream.calls.load(ordering: .relaxed) == 0, "nothing was forwarded")
            }
        }
        #expect(directory.files().isEmpty)
    }

    @Test func aStreamCutAfterNEventsAndADelayBeforeTheFirstByte() async throws {
        let directory = try await recorded(["story"], stream: true)
        try await withProxy(mode: .replay, root: directory.path, upstreamPort: nil) { port in
            var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/up/chat/completions")
            request.method = .POST
            request.headers.add(name: "X-Test-ID", value: testID)
            request.headers.add(name: "X-Recorder-Fault", value: "cut-after=2; event-delay=20ms")
            request.body = .bytes(ByteBuffer(bytes: chatBody("story", stream: true)))
            let response = try await TestClient.http.execute(request, timeout: .seconds(10))
            var received = ""
            var failed = false
            do {
                for try await chunk in response.body { received += String(buffer: chunk) }
            } catch {
                failed = true
            }
            #expect(failed, "the connection is cut: \(received)")
            #expect(received.components(separatedBy: "\n\n").filter { !$0.isEmpty }.count == 2, "\(received)")

            let started = ContinuousClock.now
            let delayed = try await TestClient(port: port).send(
                .post,
                "/up/chat/completions",
                body: chatBody("story", stream: true),
                headers: [("X-Test-ID", testID), ("X-Recorder-Fault", "delay=300ms")]
            )
            #expect(delayed.status == 200 && delayed.text.contains("[DONE]"))
            #expect(ContinuousClock.now - started >= .milliseconds(300))
            let entries = try await TestClient(port: port).send(.get, "/__recorder/journal").json?["entries"]
            #expect(entries?.arrayValue?.map { $0["outcome"]?.stringValue } == ["fault", "replayed"])
            #expect(
                (entries?.arrayValue?.last?["duration_ms"]).flatMap {
                    if case .float(let value) = $0 { value } else { nil }
                } ?? 0 >= 300
            )
        }
    }

    @Test func recordingUnderACutStillSavesTheWholeStream() async throws {
        let directory = try TemporaryDirectory()
        let upstream = FakeUpstream()
        try await withRunning(upstream.application) { upstreamPort in
            try await withProxy(mode: .record, root: directory.path, upstreamPort: upstreamPort) { port in
                let client = TestClient(port: port)
                await #expect(throws: (any Error).self) {
                    _ = try await client.send(
                        .post,
                        "/up/chat/completions",
                        body: chatBody("story", stream: true),
                        headers: [("X-Test-ID", testID), ("X-Recorder-Fault", "cut-after=1")]
                    )
                }
                try await waitUntil { directory.files().count == 1 }
            }
        }
        let recording = try Recording(contentsOfFile: directory.path + "/" + (directory.files().first ?? ""))
        #expect(recording.body.arrayValue?.count ?? 0 >= 3, "the whole stream, not the cut")
    }
}
