import APIRecorder
import Foundation
import TestSupport
import Testing

/// `api-recorder run` and the provider presets, as processes: what the command sees, and the exit
/// status and summary `run` gives back. (The official SDKs under `run` are in the Python suite.)
@Suite("api-recorder run", .timeLimit(.minutes(2)))
struct RunCommandTests {
    /// Runs `api-recorder ARGUMENTS` with no mode variables and only `extra` added to the environment.
    private func recorder(_ arguments: [String], extra: [String] = [], in directory: String) throws -> ProgramOutput {
        let unset = [
            "API_RECORDER_MODE", "OGX_TEST_INFERENCE_MODE", "LLAMA_STACK_TEST_INFERENCE_MODE", "OPENAI_API_KEY",
        ]
        .flatMap { ["-u", $0] }
        return try runProgram("/usr/bin/env", unset + extra + [BuiltBinary.path] + arguments, in: directory)
    }

    @Test func theCommandSeesTheProxyThroughEachSDKsOwnVariables() throws {
        let directory = try TemporaryDirectory()
        let output = try recorder(["run", "--", "/bin/sh", "-c", "env | sort"], in: directory.path)
        #expect(output.status == 0, "\(output.stderr)")
        let variables = Dictionary(
            output.stdout.split(separator: "\n").compactMap { line -> (String, String)? in
                guard let equals = line.firstIndex(of: "=") else { return nil }
                return (String(line[..<equals]), String(line[line.index(after: equals)...]))
            },
            uniquingKeysWith: { $1 }
        )
        let base = try #require(variables["API_RECORDER_URL"])
        #expect(base.hasPrefix("http://127.0.0.1:") && !base.hasSuffix(":0"))
        #expect(variables["API_RECORDER_MODE"] == "replay")
        #expect(variables["OPENAI_BASE_URL"] == base + "/openai")
        #expect(variables["ANTHROPIC_BASE_URL"] == base + "/anthropic")
        #expect(variables["OLLAMA_HOST"] == base + "/ollama")
        #expect(variables["GOOGLE_GEMINI_BASE_URL"] == base + "/gemini")
        #expect(variables["API_RECORDER_TAVILY_URL"] == base + "/tavily")
        // Replay mode: keys the SDKs insist on are filled in where unset.
        #expect(variables["OPENAI_API_KEY"] == "api-recorder-placeholder-key")
        #expect(output.stderr.contains("api-recorder: mode replay: 0 replayed, 0 missed"))
    }

    @Test func onlyTheNamedPresetsAndAKeyThatIsSetStays() throws {
        let directory = try TemporaryDirectory()
        let output = try recorder(
            ["run", "--provider", "openai", "--", "/bin/sh", "-c", "env | sort"],
            extra: ["OPENAI_API_KEY=sk-mine"],
            in: directory.path
        )
        #expect(output.status == 0, "\(output.stderr)")
        #expect(output.stdout.contains("OPENAI_BASE_URL="))
        #expect(!output.stdout.contains("ANTHROPIC_BASE_URL="))
        #expect(output.stdout.contains("OPENAI_API_KEY=sk-mine\n"))
    }

    @Test func exitsWithTheCommandsStatus() throws {
        let directory = try TemporaryDirectory()
        #expect(try recorder(["run", "--", "/bin/sh", "-c", "exit 3"], in: directory.path).status == 3)
        // Killed by a signal: 128 + its number, as a shell says.
        #expect(try recorder(["run", "--", "/bin/sh", "-c", "kill -TERM $$"], in: directory.path).status == 143)
        let missing = try recorder(["run", "--", "no-such-command-here"], in: directory.path)
        #expect(missing.status == 127)
        #expect(missing.stderr.contains("no-such-command-here: command not found"))
        // No command is a usage error.
        #expect(try recorder(["run"], in: directory.path).status == 64)
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/curl"), "needs curl"))
    func aReplayMissExitsWithOneUnlessAllowed() throws {
        let directory = try TemporaryDirectory()
        let request =
            #"curl -s -o /dev/null "$OPENAI_BASE_URL/chat/completions" -H 'Content-Type: application/json' "#
            + #"-d '{"model": "m", "messages": [{"role": "user", "content": "hi"}]}'"#
        let missed = try recorder(["run", "--provider", "openai", "--", "/bin/sh", "-c", request], in: directory.path)
        #expect(missed.status == 1)
        #expect(missed.stderr.contains("1 missed"))
        #expect(missed.stderr.contains("api-recorder: missed POST https://api.openai.com/v1/chat/completions"))
        #expect(missed.stderr.contains("--allow-misses keeps it"))
        let allowed = try recorder(
            ["run", "--provider", "openai", "--allow-misses", "--", "/bin/sh", "-c", request + "; exit 5"],
            in: directory.path
        )
        #expect(allowed.status == 5)
    }

    @Test func serveTakesPresetsAndAnUpstreamOnlyMovesWhereTheyForward() throws {
        let directory = try TemporaryDirectory()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: BuiltBinary.path)
        process.arguments = [
            "serve", "--port", "0", "--root", directory.path, "--provider", "openai", "--provider", "ollama",
            "--upstream", "openai=http://127.0.0.1:8080/v1",
        ]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
        defer { process.terminate() }
        var line: [UInt8] = []
        while let byte = try output.fileHandleForReading.read(upToCount: 1)?.first, byte != 0x0A { line.append(byte) }
        let text = String(decoding: line, as: UTF8.self)
        #expect(
            text.hasSuffix(
                "routes=ollama=http://127.0.0.1:11434,openai=http://127.0.0.1:8080/v1 (recorded as https://api.openai.com/v1)"
            ),
            "\(text)"
        )
    }

    @Test func badPresetFlagsAreUsageErrors() throws {
        for arguments in [
            ["--provider", "openia"], ["--merge-report"], ["--provider", "openai", "--adapter", "anthropic=http"],
        ] {
            let output = try BuiltBinary.run(["serve", "--port", "0"] + arguments)
            #expect(output.status == 64, "\(arguments): \(output.stderr)")
            #expect(!output.stderr.isEmpty)
        }
    }

    @Test func untilStdinClosesStopsWhenTheParentsPipeCloses() throws {
        let directory = try TemporaryDirectory()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: BuiltBinary.path)
        process.arguments = ["serve", "--port", "0", "--root", directory.path, "--until-stdin-closes"]
        let input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        var line: [UInt8] = []
        while let byte = try output.fileHandleForReading.read(upToCount: 1)?.first, byte != 0x0A { line.append(byte) }
        #expect(String(decoding: line, as: UTF8.self).hasPrefix("api-recorder listening on"))
        // Input that arrives is ignored; the end of it stops the server.
        input.fileHandleForWriting.write(Data("ignored\n".utf8))
        Thread.sleep(forTimeInterval: 0.3)
        #expect(process.isRunning)
        try input.fileHandleForWriting.close()
        let deadline = Date().addingTimeInterval(10)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        #expect(!process.isRunning)
        if !process.isRunning { #expect(process.terminationStatus == 0) }
    }
}
