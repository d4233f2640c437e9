import APIRecorder
import Foundation
import TestSupport
import Testing

/// The `api-recorder` binary, run as a user runs it.
@Suite("The api-recorder command")
struct CommandLineTests {
    static let seedFolder = Shared.root.appendingPathComponent("fixtures/seed").path
    static let seedFile =
        "\(seedFolder)/tests/integration/responses/recordings/aa152c7d111f58cc0fe23fc14264ffc74e4938b686527481b55a207e1d20cb90.json"

    static func sampleRecording(prompt: String = "hi", reply: String = "hello") -> Recording {
        let body: JSONValue = ["model": "m", "messages": [["role": "user", "content": .string(prompt)]]]
        return Recording.inference(
            testID: "tests/test_a.py::test_b",
            method: "POST",
            url: "http://127.0.0.1:1/v1/chat/completions",
            body: body,
            endpoint: "/v1/chat/completions",
            model: "m",
            outcome: .body(["reply": .string(reply)])
        )
    }

    @Test func helpListsTheCommands() throws {
        let output = try BuiltBinary.run(["--help"])
        #expect(output.status == 0)
        for command in ["serve", "hash", "verify", "show"] { #expect(output.stdout.contains(command)) }
    }

    @Test(.enabled(if: Shared.isAvailable, Shared.skipMessage))
    func hashPrintsTheContentHash() throws {
        let output = try BuiltBinary.run(["hash", Self.seedFile])
        #expect(output.status == 0)
        #expect(output.stdout == "aa152c7d111f58cc0fe23fc14264ffc74e4938b686527481b55a207e1d20cb90  \(Self.seedFile)\n")
    }

    @Test(.enabled(if: Shared.isAvailable, Shared.skipMessage))
    func hashWalksFoldersAndKeepsTheirOrderOnEveryCore() throws {
        let sample = Shared.root.appendingPathComponent("corpus-sample").path
        let output = try BuiltBinary.run(["hash", sample])
        #expect(output.status == 0, "\(output.stderr)")
        let lines = output.stdout.split(separator: "\n")
        let files = RecordingVerifier.recordingFiles(in: [sample])
        #expect(lines.count == files.count && files.count > 50)
        for (line, file) in zip(lines, files) {
            // Every reference file is named by its hash: the fast path agrees with the full parse.
            let name = file.split(separator: "/").last.map(String.init) ?? ""
            let expected = try Recording(contentsOfFile: file).fileName()
            #expect(line == "\(try Recording(contentsOfFile: file).hash)  \(file)")
            #expect(name == expected)
        }
    }

    @Test func hashNamesTheFileAndReasonOnError() throws {
        let directory = try TemporaryDirectory()
        let broken = try directory.write("recordings/broken.json", Array("{\"request\": [}".utf8))
        let output = try BuiltBinary.run(["hash", broken, "\(directory.path)/missing.json"])
        #expect(output.status == 1)
        #expect(output.stderr.contains("\(broken): corrupt recording: invalid JSON at byte 13"))
        #expect(output.stderr.contains("missing.json: cannot open"))
    }

    @Test(.enabled(if: Shared.isAvailable, Shared.skipMessage))
    func verifyPassesOnTheReferenceRecordings() throws {
        let output = try BuiltBinary.run([
            "verify", Shared.root.appendingPathComponent("corpus-sample").path, Self.seedFolder,
        ])
        #expect(output.status == 0)
        #expect(output.stdout.hasSuffix("83 recordings: 83 ok, 0 misnamed, 0 not canonical, 0 unreadable\n"))
    }

    @Test func verifyReportsAndFixesProblems() throws {
        let directory = try TemporaryDirectory()
        let good = Self.sampleRecording()
        let goodPath = try directory.write("tests/recordings/\(good.hash).json", good.fileBytes())
        // Right content, wrong name.
        let misnamed = Self.sampleRecording(prompt: "other")
        let misnamedPath = try directory.write(
            "tests/recordings/\(String(repeating: "0", count: 64)).json",
            misnamed.fileBytes()
        )
        // Right name, compact bytes.
        let compact = Recording.inference(
            testID: nil,
            method: "GET",
            url: "http://h/v1/x",
            body: [:],
            endpoint: "/v1/x",
            model: "",
            outcome: .body(["a": 1])
        )
        try directory.write("recordings/\(compact.hash).json", JSONValue.object(compact.json).compactBytes())
        try directory.write("recordings/garbage.json", Array("not json".utf8))
        try directory.write("elsewhere/ignored.json", Array("not a recording folder".utf8))

        let check = try BuiltBinary.run(["verify"], in: directory.path)
        #expect(check.status == 1)
        #expect(check.stdout.contains("stale: its content hashes to \(misnamed.hash).json, so it can never replay"))
        #expect(check.stdout.contains("\(compact.hash).json: not canonical"))
        #expect(check.stdout.contains("garbage.json: unreadable: invalid JSON at byte 0"))
        #expect(check.stdout.hasSuffix("4 recordings: 1 ok, 1 misnamed, 1 not canonical, 1 unreadable\n"))

        let fix = try BuiltBinary.run(["verify", "--fix"], in: directory.path)
        #expect(fix.status == 1, "the unreadable file remains")
        #expect(!FileManager.default.fileExists(atPath: misnamedPath))
        #expect(try readBytes("\(directory.path)/tests/recordings/\(misnamed.hash).json") == misnamed.fileBytes())
        #expect(try readBytes("\(directory.path)/recordings/\(compact.hash).json") == compact.fileBytes())
        #expect(try readBytes(goodPath) == good.fileBytes())

        try FileManager.default.removeItem(atPath: "\(directory.path)/recordings/garbage.json")
        let again = try BuiltBinary.run(["verify"], in: directory.path)
        #expect(again.status == 0)
        let conflict = Self.sampleRecording(reply: "same request, other answer")
        try directory.write("tests/recordings/\(String(repeating: "1", count: 64)).json", conflict.fileBytes())
        let refused = try BuiltBinary.run(["verify", "--fix"], in: directory.path)
        #expect(refused.status == 1)
        #expect(refused.stdout.contains("not fixed: ./tests/recordings/\(good.hash).json exists with other content"))
        #expect(try readBytes(goodPath) == good.fileBytes())
        try FileManager.default.removeItem(
            atPath: "\(directory.path)/tests/recordings/\(String(repeating: "1", count: 64)).json"
        )
        #expect(again.stdout == "3 recordings: 3 ok, 0 misnamed, 0 not canonical, 0 unreadable\n")
    }

    @Test func verifyReportsCorruptShapesAndTheTemporaryFilesOfInterruptedWrites() throws {
        let directory = try TemporaryDirectory()
        let good = Self.sampleRecording()
        try directory.write("tests/recordings/\(good.hash).json", good.fileBytes())
        // A well-formed file whose body has the wrong shape for a chat completion.
        let text = String(decoding: good.fileBytes(), as: UTF8.self)
        let wrong = try #require(text.range(of: #""body": {"#, options: .backwards)).lowerBound
        let broken = String(text[..<wrong]) + #""body": 42, "is_streaming": false}, "id_normalization_mapping": {}}"#
        try directory.write("tests/recordings/broken.json", Array(broken.utf8))
        // What kill -9 during a write leaves: a temporary file of a process that is gone.
        let leftover = try directory.write("tests/recordings/.\(good.hash).json.999999999.42.tmp", Array("{".utf8))
        // A write in progress (the file is open) is left alone.
        let inProgress = try directory.write(
            "tests/recordings/.\(good.hash).json.\(ProcessInfo.processInfo.processIdentifier).7.tmp",
            Array("{".utf8)
        )
        let writer = try FileHandle(forWritingTo: URL(fileURLWithPath: inProgress))
        defer { try? writer.close() }
        // One a process of ours left (alive, but no longer writing it) is abandoned.
        let ours = try directory.write(
            "tests/recordings/.\(good.hash).json.\(ProcessInfo.processInfo.processIdentifier).8.tmp",
            Array("{".utf8)
        )

        let check = try BuiltBinary.run(["verify"], in: directory.path)
        #expect(check.status == 1)
        #expect(
            check.stdout.contains(
                "broken.json: unreadable: response.body of an inference recording is a number (42), not an object, list or text"
            ),
            "\(check.stdout)"
        )
        #expect(check.stdout.contains(".\(good.hash).json.999999999.42.tmp: temporary file of an interrupted write"))
        #expect(!check.stdout.contains(".7.tmp"))
        #expect(check.stdout.contains(".8.tmp: temporary file of an interrupted write"))
        #expect(
            check.stdout.hasSuffix(
                "2 recordings: 1 ok, 0 misnamed, 0 not canonical, 1 unreadable; 2 temporary files of interrupted writes\n"
            )
        )
        let fix = try BuiltBinary.run(["verify", "--fix"], in: directory.path)
        #expect(fix.stdout.contains("(2 removed)"))
        #expect(!FileManager.default.fileExists(atPath: leftover) && !FileManager.default.fileExists(atPath: ours))
        #expect(FileManager.default.fileExists(atPath: inProgress))
    }

    /// Several processes rewriting the same recording at once: readers only ever see a whole file.
    @Test func concurrentFixingProcessesNeverTearAFile() async throws {
        let directory = try TemporaryDirectory()
        let recording = Self.sampleRecording(reply: String(repeating: "long reply ", count: 20_000))
        let path = "\(directory.path)/recordings/\(recording.hash).json"
        let compact = JSONValue.object(recording.json).compactBytes()
        let canonical = recording.fileBytes()
        for round in 0..<5 {
            try directory.write("recordings/\(recording.hash).json", compact)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<6 {
                    group.addTask { _ = try BuiltBinary.run(["verify", "--fix", directory.path]) }
                }
                group.addTask {
                    for _ in 0..<200 {
                        let bytes = (try? readBytes(path)) ?? []
                        #expect(
                            bytes == compact || bytes == canonical,
                            "round \(round): torn read of \(bytes.count) bytes"
                        )
                    }
                }
                try await group.waitForAll()
            }
            #expect(try readBytes(path) == canonical)
        }
        #expect(directory.files() == ["recordings/\(recording.hash).json"])
    }

    @Test(.enabled(if: Shared.isAvailable, Shared.skipMessage))
    func showAssemblesTheSeedsStreamedToolCalls() throws {
        let output = try BuiltBinary.run(["show", Self.seedFile])
        #expect(output.status == 0)
        #expect(output.stdout.contains("kind:       inference"))
        #expect(output.stdout.contains("endpoint:   /v1/chat/completions"))
        #expect(output.stdout.contains("model:      gpt-4o"))
        #expect(output.stdout.contains("streaming:  yes, 18 chunks"))
        #expect(
            output.stdout.contains(#"get_weather (call_Pys4mcovEJAayru6y08G1AFJ) {"location": "San Francisco, USA"}"#)
        )
        #expect(
            output.stdout.contains(#"get_weather (call_h69ImcfKrTHz6PHTfDyw5nVF) {"location": "Los Angeles, USA"}"#)
        )
    }

    @Test(.enabled(if: Shared.isAvailable, Shared.skipMessage))
    func showFindsARecordingByHashPrefix() throws {
        let output = try BuiltBinary.run(["show", "aa152c7d", "--root", Self.seedFolder])
        #expect(output.status == 0)
        #expect(output.stdout.contains("hash:       aa152c7d111f58cc0fe23fc14264ffc74e4938b686527481b55a207e1d20cb90"))
        let missing = try BuiltBinary.run(["show", "ffffffff", "--root", Self.seedFolder])
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("no recording under \(Self.seedFolder) has a hash starting with ffffffff"))
    }

    /// The README's main command works on the bundled examples.
    @Test func bundledExamplesVerifyAndShow() throws {
        let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
        let verify = try BuiltBinary.run(["verify", "Examples"], in: packageRoot)
        #expect(verify.status == 0)
        #expect(verify.stdout.hasSuffix(" 0 misnamed, 0 not canonical, 0 unreadable\n"))
        let show = try BuiltBinary.run(["show", "77912a17", "--root", "Examples"], in: packageRoot)
        #expect(show.status == 0)
        #expect(show.stdout.contains("streaming:  yes"))
        #expect(show.stdout.contains("[0] get_weather (call_"))
    }

    @Test func usageErrorsExitWith64() throws {
        let output = try BuiltBinary.run(["verify", "--no-such-flag"])
        #expect(output.status == 64)
    }
}
