import APIRecorder
import Foundation
import TestSupport
import Testing

/// `api-recorder tool`: one tool call from a shell, the command being the tool.
@Suite("api-recorder tool", .timeLimit(.minutes(2)))
struct ToolCommandTests {
    private let testID = "tests/test_db.py::test_query"

    private func tool(_ arguments: [String], in directory: String) throws -> ProgramOutput {
        try runProgram(
            "/usr/bin/env",
            ["-u", "API_RECORDER_MODE", BuiltBinary.path, "tool"] + arguments,
            in: directory
        )
    }

    @Test func recordsWhatTheCommandPrintsAndReplaysItWithoutRunningIt() throws {
        let directory = try TemporaryDirectory()
        let query = ["db", "query", "--kwargs", #"{"sql": "select 1"}"#, "--test-id", testID]
        // The tool reads its kwargs on stdin.
        let recorded = try tool(
            query + ["--mode", "record", "--", "/bin/sh", "-c", #"read k; printf '{"rows": [[1]], "got": %s}' "$k""#],
            in: directory.path
        )
        #expect(recorded.status == 0, "\(recorded.stderr)")
        #expect(recorded.stdout == #"{"rows":[[1]],"got":{"sql":"select 1"}}"# + "\n")
        let files = directory.files()
        #expect(files.count == 1 && files[0].hasPrefix("tests/recordings/"))

        let replayed = try tool(query + ["--mode", "replay", "--", "/bin/false"], in: directory.path)
        #expect(replayed.status == 0 && replayed.stdout == recorded.stdout, "\(replayed.stderr)")

        let changed = ["db", "query", "--kwargs", #"{"sql": "select 2"}"#, "--test-id", testID, "--mode", "replay"]
        let miss = try tool(changed, in: directory.path)
        #expect(miss.status == 1 && miss.stdout.isEmpty)
        #expect(miss.stderr.contains(#"kwargs.sql: recorded "select 1", requested "select 2""#))
    }

    @Test func aFailingCommandIsRecordedAsTheErrorItRaised() throws {
        let directory = try TemporaryDirectory()
        let call = ["search", "web", "--kwargs", #"{"q": "x"}"#]
        let live = try tool(
            call + ["--mode", "record", "--", "/bin/sh", "-c", "echo quota exceeded >&2; exit 3"],
            in: directory.path
        )
        let replayed = try tool(call + ["--mode", "replay"], in: directory.path)
        #expect(live.status == 1 && replayed.status == 1)
        #expect(live.stderr.contains("CommandFailed: quota exceeded"))
        #expect(replayed.stderr.contains("CommandFailed: quota exceeded"), "as the live run showed it")
        let recording = try Recording(contentsOfFile: directory.path + "/" + (directory.files().first ?? ""))
        #expect(recording.exception?.type == "CommandFailed" && recording.exception?.message == "quota exceeded")
    }

    @Test func recordingWithoutACommandIsAUsageError() throws {
        let directory = try TemporaryDirectory()
        let output = try tool(["db", "query", "--mode", "record"], in: directory.path)
        #expect(output.status == 64 && output.stderr.contains("give its command after --"))
        let bad = try tool(["db", "query", "--kwargs", "[1]"], in: directory.path)
        #expect(bad.status == 64 && bad.stderr.contains("--kwargs must be a JSON object"))
        #expect(directory.files().isEmpty)
    }
}
