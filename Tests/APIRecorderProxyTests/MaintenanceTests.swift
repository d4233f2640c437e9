import APIRecorder
import APIRecorderProxy
import Foundation
import HTTPTypes
import ServerTestSupport
import Testing

/// What a team needs to keep recordings in shape, through the proxy: the session report file,
/// miss diagnostics over HTTP, several fallback folders.
@Suite("Recordings maintenance through the proxy", .timeLimit(.minutes(2)))
struct MaintenanceTests {
    static let testID = "tests/proxy/test_maintenance.py::test_it"

    @Test func theReportFileListsMissesWithDiagnosticsAndWhatWasUsed() async throws {
        let directory = try TemporaryDirectory()
        try await withRunning(FakeUpstream().application) { upstreamPort in
            try await withProxy(mode: .record, root: directory.path, upstreamPort: upstreamPort) { port in
                for prompt in ["Say hello.", "Say nothing."] {
                    let reply = try await TestClient(port: port).chat(prompt, testID: Self.testID)
                    #expect(reply.status == 200)
                }
            }
        }
        let files = directory.files()
        let report = "\(directory.path)/report.json"
        try await withProxy(
            ProxyConfiguration.test(mode: .replay, root: directory.path, upstreamPort: nil).with {
                $0.reportFile = report
            }
        ) { port in
            let client = TestClient(port: port)
            let hit = try await client.chat("Say hello.", testID: Self.testID)
            #expect(hit.status == 200)
            let miss = try await client.chat("Say goodbye.", testID: Self.testID)
            #expect(miss.status == 404)
            #expect(
                miss.json?["error"]?["nearest"]?["differences"]?.arrayValue?.first?["path"] == "messages[0].content"
            )
            // The same report, while the server runs.
            let live = try await client.send(.get, "/__recorder/report")
            #expect(live.json?["missed"] == 1 && live.json?["misses"]?.arrayValue?.count == 1)
        }
        let written = try JSONValue(parsing: readBytes(report))
        #expect(written["root"]?.stringValue == directory.path)
        #expect(written["mode"] == "replay" && written["replayed"] == 1 && written["missed"] == 1)
        let missed = try #require(written["misses"]?.arrayValue?.first)
        #expect(missed["test_id"]?.stringValue == Self.testID)
        let nearest = try #require(missed["nearest"])
        #expect(
            nearest["differences"] == [
                ["path": "messages[0].content", "recorded": "Say nothing.", "requested": "Say goodbye."]
            ]
                || nearest["differences"] == [
                    ["path": "messages[0].content", "recorded": "Say hello.", "requested": "Say goodbye."]
                ]
        )
        let used = written["used"]?.arrayValue?.compactMap(\.stringValue) ?? []
        let unused = written["unused"]?.arrayValue?.compactMap(\.stringValue) ?? []
        #expect(used.count == 1 && unused.count == 1)
        #expect(Set(used + unused) == Set(files))
        #expect(SessionReport(json: written)?.misses == 1)
    }

    @Test func lookUpsTryEveryFallbackFolderInOrderAndWritesGoToTheFirst() async throws {
        let directory = try TemporaryDirectory()
        let body = chatBody("shared set-up")
        // A recording without a test id, in the second fallback folder.
        let identity = RequestIdentity.inference(
            method: "POST",
            url: "http://127.0.0.1:9/v1/chat/completions",
            body: try JSONValue(parsing: body),
            testID: nil
        )
        try directory.write(
            "suite-b/recordings/\(identity.hash).json",
            Recording.inference(
                testID: nil,
                method: "POST",
                url: "http://127.0.0.1:9/v1/chat/completions",
                body: try JSONValue(parsing: body),
                endpoint: "/v1/chat/completions",
                model: "test-model",
                outcome: .body(["id": "x", "object": "chat.completion", "choices": []])
            ).fileBytes()
        )
        let folders = ["suite-a/recordings", "suite-b/recordings"]
        try await withProxy(
            ProxyConfiguration.test(mode: .replay, root: directory.path, upstreamPort: nil).with {
                $0.fallbackDirectories = folders
            }
        ) { port in
            let reply = try await TestClient(port: port).chat("shared set-up", testID: nil)
            #expect(reply.status == 200)
        }
        try await withRunning(FakeUpstream().application) { upstreamPort in
            try await withProxy(
                ProxyConfiguration.test(mode: .record, root: directory.path, upstreamPort: upstreamPort).with {
                    $0.fallbackDirectories = folders
                }
            ) { port in
                let reply = try await TestClient(port: port).chat("new set-up", testID: nil)
                #expect(reply.status == 200)
            }
        }
        #expect(directory.files().filter { $0.hasPrefix("suite-a/recordings/") }.count == 1, "\(directory.files())")
    }
}

/// Reports from several scopes or processes merge into one file.
@Suite("Session reports")
struct SessionReportTests {
    @Test func reportsMergeCountsAndUsedRecordings() throws {
        let directory = try TemporaryDirectory()
        func report(used: [String], unused: [String], missed: Int) -> SessionReport {
            var json = SessionReport(
                json: [
                    "mode": "replay", "root": .string(directory.path), "replayed": .integer(used.count),
                    "missed": .integer(missed), "used": .array(used.map(JSONValue.string)),
                    "unused": .array(unused.map(JSONValue.string)),
                ]
            )!
            json.written = []
            return json
        }
        let file = "\(directory.path)/merged.json"
        try report(used: ["a.json"], unused: ["b.json", "c.json"], missed: 0).merge(into: file)
        try report(used: ["b.json"], unused: ["a.json", "c.json"], missed: 1).merge(into: file)
        let merged = try #require(SessionReport(json: try JSONValue(parsing: readBytes(file))))
        #expect(merged.hits == 2 && merged.misses == 1)
        #expect(merged.used == ["a.json", "b.json"] && merged.unused == ["c.json"])
    }
}
