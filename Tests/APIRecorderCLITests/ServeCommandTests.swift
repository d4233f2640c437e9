import APIRecorder
import Foundation
import TestSupport
import Testing

/// `api-recorder serve` as a process: start-up line, flags, environment, graceful shutdown.
@Suite("api-recorder serve")
struct ServeCommandTests {
    /// Starts `serve` and returns the process and its start-up line.
    private func start(_ arguments: [String], environment: [String: String] = [:]) throws -> (Process, String, Pipe) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: BuiltBinary.path)
        process.arguments = ["serve", "--port", "0"] + arguments
        process.environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasSuffix("_MODE") }
            .merging(environment) { $1 }
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        var line: [UInt8] = []
        while let byte = try output.fileHandleForReading.read(upToCount: 1)?.first, byte != 0x0A { line.append(byte) }
        return (process, String(decoding: line, as: UTF8.self), output)
    }

    @Test func printsOneLineWithAddressModeRootAndRoutes() throws {
        let directory = try TemporaryDirectory()
        let (process, line, _) = try start(
            ["--root", directory.path, "--upstream", "openai=https://api.openai.com/v1",
             "--recorded-base", "openai=https://api.openai.com/v1/v1"],
            environment: ["OGX_TEST_INFERENCE_MODE": "record-if-missing"])
        defer { process.terminate() }
        #expect(line.hasPrefix("api-recorder listening on http://127.0.0.1:"))
        #expect(!line.contains(":0 "))
        #expect(line.contains("mode=record-if-missing"))
        #expect(line.contains("root=\(directory.path)"))
        #expect(line.contains("routes=openai=https://api.openai.com/v1 (recorded as https://api.openai.com/v1/v1)"))
    }

    @Test func badFlagsAreUsageErrors() throws {
        for arguments in [["--mode", "sometimes"], ["--upstream", "noequals"], ["--upstream", "a=ftp://x"],
            ["--recorded-base", "b=http://x"], ["--pace", "fast"]]
        {
            let output = try BuiltBinary.run(["serve", "--port", "0"] + arguments)
            #expect(output.status == 64, "\(arguments): \(output.stderr)")
            #expect(!output.stderr.isEmpty)
        }
    }

    @Test func sigtermStopsTheServerCleanly() throws {
        let directory = try TemporaryDirectory()
        let (process, line, _) = try start(["--root", directory.path, "--upstream", "a=http://127.0.0.1:9/v1"])
        #expect(line.contains("mode=replay"))
        process.terminate()
        process.waitUntilExit()
        #expect(process.terminationReason == .exit)
        #expect(process.terminationStatus == 0)
    }
}
