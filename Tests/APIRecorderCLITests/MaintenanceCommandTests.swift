import APIRecorder
import Foundation
import TestSupport
import Testing

/// `explain` and `prune`, run as the built binary.
@Suite("Maintenance commands")
struct MaintenanceCommandTests {
    static let testID = "tests/test_a.py::test_b"

    /// The values of the `label:` lines of a command's output.
    static func field(_ label: String, in output: String) -> [String] {
        output.split(separator: "\n").compactMap { line in
            guard line.hasPrefix(label + ":") else { return nil }
            return line.dropFirst(label.count + 1).trimmingCharacters(in: .whitespaces)
        }
    }

    @Test func explainPrintsTheHashAndTheCanonicalJSONThatIsHashed() throws {
        let directory = try TemporaryDirectory()
        let recording = CommandLineTests.sampleRecording()
        let path = try directory.write("tests/recordings/\(recording.hash).json", recording.fileBytes())
        let output = try BuiltBinary.run(["explain", path])
        #expect(output.status == 0, "\(output.stderr)")
        #expect(Self.field("hash", in: output.stdout).contains("\(recording.hash)"))
        #expect(Self.field("name", in: output.stdout).contains("matches its content"))
        #expect(
            Self.field("identity", in: output.stdout) == [
                String(decoding: recording.identity.canonicalBytes, as: UTF8.self)
            ]
        )
        // By hash prefix, under a root.
        let byHash = try BuiltBinary.run(["explain", String(recording.hash.prefix(10)), "--root", directory.path])
        #expect(byHash.stdout == output.stdout.replacingOccurrences(of: path, with: path))
    }

    @Test func explainSaysWhyAStaleRecordingCanNeverReplay() throws {
        let directory = try TemporaryDirectory()
        let recording = CommandLineTests.sampleRecording()
        // Named as if the test id were not part of the hash.
        let oldName = RequestIdentity.inference(
            method: "POST",
            url: recording.url!,
            body: recording.request["body"]!,
            testID: nil
        ).hash
        let path = try directory.write("tests/recordings/\(oldName).json", recording.fileBytes())
        let output = try BuiltBinary.run(["explain", path])
        #expect(output.status == 1)
        #expect(
            Self.field("name", in: output.stdout) == [
                "stale: named \(oldName).json, but its content hashes to \(recording.hash).json, so it can never replay"
            ]
        )
        #expect(Self.field("why", in: output.stdout).first?.hasPrefix("it was named without its test id") == true)

        // One that no known rule explains, in the wrong folder too.
        let edited = try directory.write(
            "other/recordings/\(String(repeating: "a", count: 64)).json",
            recording.fileBytes()
        )
        let unknown = try BuiltBinary.run(["explain", edited, "--root", directory.path])
        #expect(unknown.stdout.contains("no known rule gives this name"))
        #expect(
            Self.field("folder", in: unknown.stdout).contains(
                "it lies in other/recordings, but its test id files it in tests/recordings: look-ups there miss it"
            )
        )
        // verify calls it stale too.
        let verify = try BuiltBinary.run(["verify", directory.path])
        #expect(verify.stdout.contains("\(oldName).json: stale: its content hashes to \(recording.hash).json"))
    }

    @Test func explainComputesTheIdentityOfARequestWithNoRecording() throws {
        let directory = try TemporaryDirectory()
        let body: JSONValue = [
            "model": "m", "messages": [["role": "user", "content": "new"]], "temperature": 0.1234567,
        ]
        let file = try directory.write("body.json", body.compactBytes())
        let url = "https://api.openai.com/v1/v1/chat/completions"
        let output = try BuiltBinary.run([
            "explain", "--request", file, "--url", url, "--test-id", Self.testID, "--root", directory.path,
        ])
        let identity = RequestIdentity.inference(method: "POST", url: url, body: body, testID: Self.testID)
        #expect(output.status == 0, "\(output.stderr)")
        #expect(Self.field("hash", in: output.stdout).contains("\(identity.hash)"))
        #expect(output.stdout.contains("\(directory.path)/tests/recordings/\(identity.hash).json (not recorded)"))
        #expect(output.stdout.contains(#""temperature": 0.12346"#), "the identity shows the normalised body")
        let usage = try BuiltBinary.run(["explain", "--request", file])
        #expect(usage.status == 64)
    }

    /// A report saying which recordings a session used.
    static func report(root: String, used: [String], misses: Int = 0) -> [UInt8] {
        let value: JSONValue = [
            "version": 1, "mode": "replay", "root": .string(root), "replayed": .integer(used.count),
            "missed": .integer(misses), "recorded": 0, "passed_through": 0, "errors": 0, "misses": [],
            "written": [], "used": .array(used.map(JSONValue.string)), "unused": [], "store_failures": [],
        ]
        return value.fileBytes()
    }

    @Test func pruneListsAndDeletesWhatNoReportUsed() throws {
        let directory = try TemporaryDirectory()
        let root = directory.path
        var files: [String] = []
        for prompt in ["a", "b", "c"] {
            let recording = CommandLineTests.sampleRecording(prompt: prompt)
            let relative = "tests/recordings/\(recording.hash).json"
            try directory.write(relative, recording.fileBytes())
            files.append(relative)
        }
        let outside = try directory.write("elsewhere/notes.json", Array("{}".utf8))
        // Two shards, each using one recording.
        let shard1 = try directory.write("reports/1.json", Self.report(root: root, used: [files[0]]))
        let shard2 = try directory.write("reports/2.json", Self.report(root: root, used: [files[1]]))

        let list = try BuiltBinary.run(["prune", shard1, shard2])
        #expect(list.status == 0, "\(list.stderr)")
        #expect(list.stdout.contains("unused: \(files[2])"))
        #expect(!list.stdout.contains(files[0]) && !list.stdout.contains(files[1]))
        #expect(FileManager.default.fileExists(atPath: "\(root)/\(files[2])"), "listing deletes nothing")

        let delete = try BuiltBinary.run(["prune", shard1, shard2, "--delete"])
        #expect(delete.status == 0)
        #expect(
            delete.stdout.contains("deleted: \(files[2])") && delete.stdout.contains("1 of 1 unused recordings deleted")
        )
        #expect(!FileManager.default.fileExists(atPath: "\(root)/\(files[2])"))
        #expect(
            FileManager.default.fileExists(atPath: "\(root)/\(files[0])")
                && FileManager.default.fileExists(atPath: outside)
        )
    }

    @Test func pruneRefusesReportsWithMissesOrOtherRoots() throws {
        let directory = try TemporaryDirectory()
        let recording = CommandLineTests.sampleRecording()
        try directory.write("tests/recordings/\(recording.hash).json", recording.fileBytes())
        let missed = try directory.write("r/missed.json", Self.report(root: directory.path, used: [], misses: 2))
        let refused = try BuiltBinary.run(["prune", missed, "--delete"])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("has 2 misses"))
        #expect(TemporaryDirectory.files(in: directory.path).contains("tests/recordings/\(recording.hash).json"))

        let other = try directory.write("r/other.json", Self.report(root: "/somewhere/else", used: []))
        let clean = try directory.write("r/clean.json", Self.report(root: directory.path, used: []))
        let disagree = try BuiltBinary.run(["prune", clean, other])
        #expect(disagree.status == 1 && disagree.stderr.contains("different roots"))

        let forced = try BuiltBinary.run(["prune", missed, "--force"])
        #expect(forced.status == 0 && forced.stdout.contains("unused: tests/recordings/\(recording.hash).json"))
        let notAReport = try directory.write("r/bad.json", Array("[]".utf8))
        #expect(try BuiltBinary.run(["prune", notAReport]).status == 1)
    }
}
