import APIRecorder
import APIRecorderTesting
import Foundation
import ServerTestSupport
import TestSupport
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Roots that live for the whole test run (trait arguments are evaluated once).
enum Roots {
    static let empty = NSTemporaryDirectory() + "api-recorder-trait-empty-\(UUID().uuidString)"
    static let tools = NSTemporaryDirectory() + "api-recorder-trait-tools-\(UUID().uuidString)"
    static let global = NSTemporaryDirectory() + "api-recorder-trait-global-\(UUID().uuidString)"
}

@Suite("The .recording trait", .timeLimit(.minutes(2)))
struct TraitTests {
    @Test(.recording)
    func namesTheTestAfterItsFileSoRecordingsLiveBesideIt() throws {
        let scope = try #require(RecordingScope.current)
        #expect(
            scope.testID
                == "Tests/APIRecorderTestingTests/TraitTests.swift::TraitTests/namesTheTestAfterItsFileSoRecordingsLiveBesideIt()"
        )
        #expect(
            try RecordingLayout.relativeDirectory(forTestID: scope.testID) == "Tests/APIRecorderTestingTests/recordings"
        )
        // The root is the package the test file belongs to; the mode defaults to replay.
        #expect(FileManager.default.fileExists(atPath: scope.recorder.store.root + "/Package.swift"))
        if ProcessInfo.processInfo.environment.keys.allSatisfy({ !RecordingMode.environmentVariables.contains($0) }) {
            #expect(scope.recorder.mode == .replay)
        }
    }

    @Test(.recording(mode: .live, root: Roots.empty, faults: [.status(503, times: 1), .delay(.milliseconds(50))]))
    func faultsApplyToTheTestsExchangesInOrderAndAreJournaled() async throws {
        let scope = try #require(RecordingScope.current)
        let unavailable = await scope.perform(
            method: "POST",
            url: "http://127.0.0.1:9/v1/chat/completions",
            headers: [],
            body: chatBody("never sent")
        )
        #expect(unavailable.status == 503)
        #expect(try JSONValue(parsing: try await unavailable.collectBody())["error"]?["type"] == "service_unavailable")
        // The next fault, a delay, lets the exchange run: live, to a closed port.
        let started = ContinuousClock.now
        let refused = await scope.perform(
            method: "POST",
            url: "http://127.0.0.1:9/v1/chat/completions",
            headers: [],
            body: chatBody("sent late")
        )
        #expect(refused.status == 502 && ContinuousClock.now - started >= .milliseconds(50))
        #expect(scope.journal.map(\.outcome) == [.fault, .error])
        #expect(scope.journal.map(\.fault) == ["status=503; times=1", "delay=50ms"])
        #expect(scope.recorder.report(forTestID: scope.testID).faults == 2)
    }

    @Test(.recording(mode: .replay, root: Roots.empty))
    func aMissFailsTheTestWithTheHashAndHowToRecord() async throws {
        let scope = try #require(RecordingScope.current)
        var status = 0
        var body: [UInt8] = []
        await withKnownIssue {
            let response = await scope.perform(
                method: "POST",
                url: "http://127.0.0.1:9/v1/chat/completions",
                headers: [],
                body: chatBody("nothing recorded")
            )
            status = response.status
            body = (try? await response.collectBody()) ?? []
        } matching: { issue in
            let text = issue.comments.map(\.rawValue).joined()
            return text.contains("No recording for this request (hash ")
                && text.contains("API_RECORDER_MODE=record-if-missing")
        }
        // The code under test sees the provider's own error, not a crash.
        #expect(status == 404)
        #expect(try JSONValue(parsing: body)["error"]?["type"] == "recording_not_found")
    }

    /// A miss fails the test with the diagnosis: the nearest recording and what differs.
    @Test func aMissShowsTheNearestRecordingAndWhatDiffers() async throws {
        let test = try #require(Test.current)
        let root = try TemporaryDirectory()
        // What the test recorded on an earlier run, under its own test id.
        let testID = RecordingTrait.testPlace(of: test).testID
        let recorded: JSONValue = [
            "model": "test-model", "messages": [["role": "user", "content": "Say hello."]], "stream": false,
        ]
        try RecordingStore(root: root.path).save(
            Recording.inference(
                testID: testID,
                method: "POST",
                url: "http://127.0.0.1:9/v1/chat/completions",
                body: recorded,
                endpoint: "/v1/chat/completions",
                model: "test-model",
                outcome: .body(["id": "x"])
            )
        )
        try await withKnownIssue {
            try await RecordingTrait.recording(mode: .replay, root: root.path).provideScope(for: test, testCase: nil) {
                let response = await RecordingScope.current!.perform(
                    method: "POST",
                    url: "http://127.0.0.1:9/v1/chat/completions",
                    headers: [],
                    body: chatBody("Say goodbye.")
                )
                #expect(response.status == 404)
            }
        } matching: { issue in
            let text = issue.comments.map(\.rawValue).joined()
            return text.contains("Nearest recording: Tests/APIRecorderTestingTests/recordings/")
                && text.contains(#"messages[0].content: recorded "Say hello.", requested "Say goodbye.""#)
        }
    }

    /// URLSession runs its protocol outside the test's task, where no test is current: the miss
    /// still fails the test, when the test's scope ends.
    @Test func aMissOnURLSessionsThreadsFailsTheTestWhenItEnds() async throws {
        let test = try #require(Test.current)
        try await withKnownIssue {
            try await RecordingTrait.recording(mode: .replay, root: Roots.empty).provideScope(for: test, testCase: nil)
            {
                var request = URLRequest(url: URL(string: "http://127.0.0.1:9/v1/chat/completions")!)
                request.httpMethod = "POST"
                request.httpBody = Data(chatBody("nothing recorded"))
                let (_, response) = try await RecordingScope.current!.urlSession().data(for: request)
                #expect((response as? HTTPURLResponse)?.statusCode == 404)
            }
        } matching: { issue in
            issue.comments.map(\.rawValue).joined().contains("No recording for this request (hash ")
        }
    }

    @Test(.recording(mode: .record, root: Roots.tools))
    func toolsAreRecordedUnderTheTestsScope() async throws {
        struct Query: Codable { var query: String }
        struct Hits: Codable, Equatable { var urls: [String] }
        let live = try await recordedTool(provider: "tavily", name: "web_search", arguments: Query(query: "Paris")) {
            Hits(urls: ["https://example.org/paris"])
        }
        let scope = try #require(RecordingScope.current)
        let files = TemporaryDirectory.files(in: Roots.tools)
        #expect(files.count == 1 && files[0].hasPrefix("Tests/APIRecorderTestingTests/recordings/"))
        #expect(try Recording(contentsOfFile: Roots.tools + "/" + files[0]).testID == scope.testID)

        // Replayed in a later run: the tool is not called.
        let replay = try RecordingScope(root: Roots.tools, mode: .replay, testID: scope.testID)
        let replayed = try await replay.withValue {
            try await recordedTool(provider: "tavily", name: "web_search", arguments: Query(query: "Paris")) {
                () -> Hits in
                Issue.record("the tool ran in replay mode")
                return Hits(urls: [])
            }
        }
        #expect(replayed == live)
    }

    @Test func toolsOutsideAScopeSayHowToGetOne() async {
        await #expect(throws: RecordingScopeError.self) {
            try await recordedTool(provider: "p", name: "n", arguments: ["a": 1]) { 1 }
        }
    }

    @Suite(.recording(mode: .replay, root: Roots.empty))
    struct AsASuiteTrait {
        @Test func everyTestGetsItsOwnID() throws {
            #expect(
                RecordingScope.current?.testID
                    == "Tests/APIRecorderTestingTests/TraitTests.swift::TraitTests/AsASuiteTrait/everyTestGetsItsOwnID()"
            )
        }

        @Test(arguments: [1, 2])
        func onceForEachCase(_ value: Int) throws {
            // One running scope for this case, not a second one around the whole test.
            #expect(RecordingScope.current?.testID?.hasSuffix("AsASuiteTrait/onceForEachCase(_:)") == true)
        }

        @Test func andTheSuitesSettings() throws {
            #expect(RecordingScope.current?.recorder.mode == .replay)
            #expect(RecordingScope.current?.recorder.store.root == Roots.empty)
        }
    }
}
