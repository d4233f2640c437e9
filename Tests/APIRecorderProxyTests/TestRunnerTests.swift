import APIRecorder
import APIRecorderProxy
import Foundation
import HTTPTypes
import ServerTestSupport
import Synchronization
import Testing

/// What test runners (the pytest plugin, `api-recorder run`) rely on: provider presets, the
/// client environment, and reports of one test.
@Suite("Test-runner support through the proxy", .timeLimit(.minutes(2)))
struct TestRunnerTests {
    private func testIDBody(_ testID: String?) -> [UInt8] {
        JSONValue.object(["test_id": testID.map(JSONValue.string) ?? .null]).compactBytes()
    }

    @Test func aTestsReportCountsItsOwnRequestsFromWhenItWasSet() async throws {
        let directory = try TemporaryDirectory()
        try await withProxy(mode: .replay, root: directory.path, upstreamPort: nil) { port in
            let client = TestClient(port: port)
            let first = "tests/test_runner.py::test_first"
            let second = "tests/test_runner.py::test_second"
            let other = "tests/test_other.py::test_it"
            #expect(try await client.send(.post, "/__recorder/test", body: testIDBody(first)).status == 200)
            // No header: the current test's.
            #expect(try await client.chat("one", testID: nil).status == 404)
            let firstReport = try #require(
                try await client.send(.get, "/__recorder/report?test_id=tests%2Ftest_runner.py%3A%3Atest_first").json
            )
            #expect(firstReport["test_id"] == .string(first))
            #expect(firstReport["missed"] == 1 && firstReport["replayed"] == 0)
            let miss = try #require(firstReport["misses"]?.arrayValue?.first)
            #expect(miss["test_id"] == .string(first) && miss["url"] == "http://127.0.0.1:9/v1/chat/completions")
            #expect(miss["diagnosis"] == .null, "no recording of that endpoint: nothing nearest")
            #expect(firstReport["unused"] == [], "a test's report lists no files")

            #expect(try await client.send(.post, "/__recorder/test", body: testIDBody(second)).status == 200)
            // A request that names its own test counts for that test.
            #expect(try await client.chat("two", testID: other).status == 404)
            let secondReport = try await client.send(.get, "/__recorder/report?test_id=\(second)").json
            #expect(secondReport?["missed"] == 0)
            let otherReport = try await client.send(.get, "/__recorder/report?test_id=\(other)").json
            #expect(otherReport?["missed"] == 1)

            // Setting a test again starts its counts afresh; the session keeps them all.
            #expect(try await client.send(.post, "/__recorder/test", body: testIDBody(first)).status == 200)
            let again = try await client.send(.get, "/__recorder/report?test_id=\(first)").json
            #expect(again?["missed"] == 0 && again?["misses"] == [])
            let session = try await client.send(.get, "/__recorder/report").json
            #expect(session?["missed"] == 2 && session?["test_id"] == .null)
            #expect(session?["summary"]?.stringValue?.hasPrefix("mode replay: 0 replayed, 2 missed") == true)

            // Cleared: requests with no id are reported under `test_id=` (empty).
            #expect(try await client.send(.post, "/__recorder/test", body: testIDBody(nil)).status == 200)
            #expect(try await client.chat("three", testID: nil).status == 404)
            let none = try await client.send(.get, "/__recorder/report?test_id=").json
            #expect(none?["missed"] == 1 && none?["test_id"] == .null)
        }
    }

    @Test func theMissOfATestCarriesItsDiagnosisInWords() async throws {
        let directory = try TemporaryDirectory()
        let testID = "tests/test_runner.py::test_words"
        try await withRunning(FakeUpstream().application) { upstreamPort in
            try await withProxy(mode: .record, root: directory.path, upstreamPort: upstreamPort) { port in
                let reply = try await TestClient(port: port).chat("Say hello.", testID: testID)
                #expect(reply.status == 200)
            }
        }
        try await withProxy(mode: .replay, root: directory.path, upstreamPort: nil) { port in
            let client = TestClient(port: port)
            let miss = try await client.chat("Say goodbye.", testID: testID)
            #expect(miss.status == 404)
            let report = try await client.send(.get, "/__recorder/report?test_id=\(testID)").json
            let diagnosis = try #require(report?["misses"]?.arrayValue?.first?["diagnosis"]?.stringValue)
            #expect(diagnosis.contains("messages[0].content: recorded \"Say hello.\", requested \"Say goodbye.\""))
        }
    }

    @Test func theEnvironmentPointsEachPresetsSDKAtItsRoute() async throws {
        let directory = try TemporaryDirectory()
        var configuration = ProxyConfiguration.test(mode: .replay, root: directory.path, upstreamPort: nil)
        configuration.environment = ["GOOGLE_API_KEY": "real-key"]
        configuration.routes += [ProviderPreset.openAI, .gemini, .ollama, .anthropic].map {
            $0.route(environment: configuration.environment)
        }
        try await withProxy(configuration) { port in
            let reply = try await TestClient(port: port).send(.get, "/__recorder/environment")
            #expect(reply.status == 200)
            let base = "http://127.0.0.1:\(port)"
            let environment = try #require(reply.json)
            #expect(
                environment["variables"] == [
                    "API_RECORDER_URL": .string(base), "API_RECORDER_MODE": "replay",
                    "API_RECORDER_UP_URL": .string(base + "/up"),
                    "API_RECORDER_OPENAI_URL": .string(base + "/openai"),
                    "OPENAI_BASE_URL": .string(base + "/openai"),
                    "API_RECORDER_GEMINI_URL": .string(base + "/gemini"),
                    "GOOGLE_GEMINI_BASE_URL": .string(base + "/gemini"),
                    "API_RECORDER_OLLAMA_URL": .string(base + "/ollama"), "OLLAMA_HOST": .string(base + "/ollama"),
                    "API_RECORDER_ANTHROPIC_URL": .string(base + "/anthropic"),
                    "ANTHROPIC_BASE_URL": .string(base + "/anthropic"),
                ]
            )
            // Placeholders for unset keys only (Gemini's is set; Ollama needs none).
            #expect(
                environment["placeholders"] == [
                    "OPENAI_API_KEY": .string(ClientEnvironment.placeholderKey),
                    "ANTHROPIC_API_KEY": .string(ClientEnvironment.placeholderKey),
                ]
            )
            #expect(environment["routes"]?["openai"] == .string(base + "/openai"))
        }
    }

    @Test func theEnvironmentOverridesBaseURLsAndKeepsKeysThatAreSet() {
        var configuration = ProxyConfiguration()
        configuration.mode = .recordIfMissing
        configuration.routes = [ProviderPreset.openAI.route(environment: [:])]
        let environment = ClientEnvironment(proxyURL: "http://127.0.0.1:1", configuration: configuration)
        #expect(environment.variables.contains { $0 == ("API_RECORDER_MODE", "record-if-missing") })
        let applied = environment.applied(to: ["OPENAI_BASE_URL": "elsewhere", "OPENAI_API_KEY": "sk-mine"])
        #expect(applied["OPENAI_BASE_URL"] == "http://127.0.0.1:1/openai" && applied["OPENAI_API_KEY"] == "sk-mine")
        #expect(environment.applied(to: [:])["OPENAI_API_KEY"] == PlaceholderKey.value)
    }

    @Test(arguments: [RecordingMode.record, .recordIfMissing, .live])
    func thePlaceholderKeyIsNeverForwardedNorRecorded(mode: RecordingMode) async throws {
        let directory = try TemporaryDirectory()
        let upstream = FakeUpstream()
        try await withRunning(upstream.application) { upstreamPort in
            try await withProxy(mode: mode, root: directory.path, upstreamPort: upstreamPort) { port in
                func chat(_ prompt: String, key: String) async throws -> TestClient.Reply {
                    try await TestClient(port: port).send(
                        .post,
                        "/up/chat/completions",
                        body: chatBody(prompt),
                        headers: [("Authorization", "Bearer \(key)")]
                    )
                }
                let reply = try await chat("Say hello.", key: PlaceholderKey.value)
                #expect(reply.status == 401)
                #expect(reply.json?["error"]?["type"] == "placeholder_api_key")
                #expect(reply.text.contains("OPENAI_API_KEY"))
                // Any other key goes through.
                let real = try await chat("Say hello again.", key: "sk-unused")
                #expect(real.status == 200)
            }
        }
        #expect(upstream.calls.load(ordering: .relaxed) == 1)
        #expect(directory.files().count == (mode == .live ? 0 : 1))
    }

    @Test func aPresetRecordsItsPublicBaseWhereverItForwards() async throws {
        let directory = try TemporaryDirectory()
        let testID = "tests/test_runner.py::test_preset"
        func configuration(mode: RecordingMode, upstream: String?) -> ProxyConfiguration {
            var configuration = ProxyConfiguration.test(mode: mode, root: directory.path, upstreamPort: nil)
            configuration.routes = [ProviderPreset.openAI.route(forwardingTo: upstream, environment: [:])]
            return configuration
        }
        try await withRunning(FakeUpstream().application) { upstreamPort in
            try await withProxy(configuration(mode: .record, upstream: "http://127.0.0.1:\(upstreamPort)/v1")) { port in
                let reply = try await TestClient(port: port).send(
                    .post,
                    "/openai/chat/completions",
                    body: chatBody("Say hello."),
                    headers: [("X-Test-ID", testID)]
                )
                #expect(reply.status == 200)
            }
        }
        let file = try #require(directory.files().first)
        let recording = try JSONValue(parsing: readBytes("\(directory.path)/\(file)"))
        #expect(recording["request"]?["url"] == "https://api.openai.com/v1/chat/completions")
        // Replayed with the preset as it ships: nothing forwarded, the same file.
        try await withProxy(configuration(mode: .replay, upstream: nil)) { port in
            let reply = try await TestClient(port: port).send(
                .post,
                "/openai/chat/completions",
                body: chatBody("Say hello."),
                headers: [("X-Test-ID", testID)]
            )
            #expect(reply.status == 200)
        }
    }
}
