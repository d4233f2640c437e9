import APIRecorder
import Foundation
import TestSupport
import Testing

@Suite("Recording tool invocations")
struct ToolInvocationTests {
    struct SearchArguments: Codable {
        var query: String
        var maxResults: Int
    }
    struct SearchResult: Codable, Equatable {
        var urls: [String]
        var score: Double
    }
    struct SearchFailure: Error, CustomStringConvertible { var description: String { "quota exceeded" } }

    @Test func recordsThenReplaysWithoutCallingTheTool() async throws {
        let directory = try TemporaryDirectory()
        let store = RecordingStore(root: directory.path)
        let testID = "Tests/AgentTests/SearchTests.swift::SearchTests/finds()"
        let arguments = SearchArguments(query: "Paris weather", maxResults: 3)
        let live = try await Recorder(store: store, mode: .record).invokeTool(
            provider: "tavily",
            name: "web_search",
            arguments: arguments,
            testID: testID
        ) { SearchResult(urls: ["https://example.org"], score: 0.91) }
        #expect(directory.files().count == 1)
        #expect(directory.files().first?.hasPrefix("Tests/AgentTests/recordings/") == true)

        var called = false
        let replayed = try await Recorder(store: store, mode: .replay).invokeTool(
            provider: "tavily",
            name: "web_search",
            arguments: arguments,
            testID: testID
        ) { () -> SearchResult in
            called = true
            return SearchResult(urls: [], score: 0)
        }
        #expect(!called)
        #expect(replayed == live)
        let file = "\(directory.path)/\(directory.files()[0])"
        #expect(RecordingVerifier.verify(path: file).isOK)
        #expect(try Recording(contentsOfFile: file).kind == .toolInvocation)
    }

    @Test func theTestIDIsNotPartOfTheIdentity() async throws {
        let directory = try TemporaryDirectory()
        let store = RecordingStore(root: directory.path)
        _ = try await Recorder(store: store, mode: .record).invokeTool(
            provider: "p",
            name: "t",
            arguments: ["a": 1],
            testID: nil
        ) { ["ok": true] }
        // Another test finds the set-up recording through the fallback folder.
        let replayed = try await Recorder(store: store, mode: .replay).invokeTool(
            provider: "p",
            name: "t",
            arguments: ["a": 1],
            testID: "tests/test_x.py::t"
        ) { nil }
        #expect(replayed == ["ok": true])
    }

    @Test func thrownErrorsAreRecordedAndRethrown() async throws {
        let directory = try TemporaryDirectory()
        let store = RecordingStore(root: directory.path)
        await #expect(throws: SearchFailure.self) {
            _ = try await Recorder(store: store, mode: .record).invokeTool(
                provider: "tavily",
                name: "web_search",
                arguments: ["query": "x"],
                testID: nil
            ) { throw SearchFailure() }
        }
        await #expect(throws: RecordedToolError(type: "SearchFailure", message: "quota exceeded")) {
            _ = try await Recorder(store: store, mode: .replay).invokeTool(
                provider: "tavily",
                name: "web_search",
                arguments: ["query": "x"],
                testID: nil
            ) { nil }
        }
    }

    @Test func aMissInReplayModeNamesTheHash() async throws {
        let directory = try TemporaryDirectory()
        await #expect {
            _ = try await Recorder(store: RecordingStore(root: directory.path), mode: .replay).invokeTool(
                provider: "tavily",
                name: "web_search",
                arguments: ["query": "never"],
                testID: nil
            ) { nil }
        } throws: { error in
            (error as? RecorderError)?.code == .recordingNotFound
                && (error as? RecorderError)?.message.contains("TOOL tavily.web_search") == true
        }
    }

    @Test(.enabled(if: Shared.isAvailable, Shared.skipMessage))
    func theReferenceToolRecordingsReplay() async throws {
        let root = Shared.root.appendingPathComponent("corpus-sample").path
        let store = RecordingStore(root: root, fallbackDirectory: "tests/integration/common/recordings")
        let recorder = Recorder(store: store, mode: .replay)
        let tools = RecordingVerifier.recordingFiles(in: [root]).compactMap { try? Recording(contentsOfFile: $0) }
            .filter { $0.kind == .toolInvocation }
        #expect(!tools.isEmpty)
        for recording in tools {
            let result = try await recorder.invokeTool(
                provider: recording.request["provider"]!.stringValue!,
                name: recording.request["tool_name"]!.stringValue!,
                arguments: recording.request["kwargs"]!,
                testID: recording.testID
            ) { nil }
            #expect(result == ResponseNormalization.untyped(recording.body))
            #expect(result["content"]?.stringValue?.contains("top_k") == true)
        }
    }
}
