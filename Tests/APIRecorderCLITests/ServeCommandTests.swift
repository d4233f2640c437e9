import APIRecorder
import Foundation
import TestSupport
import Testing

/// `api-recorder serve` as a process: start-up line, flags, environment, graceful shutdown.
@Suite("api-recorder serve", .timeLimit(.minutes(2)))
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
            [
                "--root", directory.path, "--upstream", "openai=https://api.openai.com/v1",
                "--recorded-base", "openai=https://api.openai.com/v1/v1",
            ],
            environment: ["OGX_TEST_INFERENCE_MODE": "record-if-missing"]
        )
        defer { process.terminate() }
        #expect(line.hasPrefix("api-recorder listening on http://127.0.0.1:"))
        #expect(!line.contains(":0 "))
        #expect(line.contains("mode=record-if-missing"))
        #expect(line.contains("root=\(directory.path)"))
        #expect(line.contains("routes=openai=https://api.openai.com/v1 (recorded as https://api.openai.com/v1/v1)"))
    }

    @Test func badFlagsAreUsageErrors() throws {
        for arguments in [
            ["--mode", "sometimes"], ["--upstream", "noequals"], ["--upstream", "a=ftp://x"],
            ["--recorded-base", "b=http://x"], ["--pace", "fast"], ["--allow-origin", "null"],
            ["--allow-origin", "app.example"], ["--max-header-bytes", "10"], ["--max-header-bytes", "100000"],
        ] {
            let output = try BuiltBinary.run(["serve", "--port", "0"] + arguments)
            #expect(output.status == 64, "\(arguments): \(output.stderr)")
            #expect(!output.stderr.isEmpty)
        }
    }

    @Test func listeningBeyondLoopbackWarnsWhatItExposesAndKeepsTheHostRule() throws {
        let directory = try TemporaryDirectory()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: BuiltBinary.path)
        process.arguments = [
            "serve", "--port", "0", "--host", "0.0.0.0", "--root", directory.path, "--upstream",
            "openai=http://127.0.0.1:9/v1", "--upstream-key", "openai=SOME_KEY", "--allow-host", "recorder",
        ]
        process.environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasSuffix("_MODE") }
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        var line: [UInt8] = []
        while let byte = try output.fileHandleForReading.read(upToCount: 1)?.first, byte != 0x0A { line.append(byte) }
        let port = String(decoding: line, as: UTF8.self).split(separator: ":").last?.split(separator: " ").first
        process.terminate()
        process.waitUntilExit()
        let stderr = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(port != nil)
        #expect(stderr.contains("warning"), "\(stderr)")
        #expect(stderr.contains("beyond loopback"), "\(stderr)")
        #expect(stderr.contains("injected upstream keys of openai"), "\(stderr)")
        #expect(stderr.contains("recordings under \(directory.path)"), "\(stderr)")
        #expect(!stderr.contains("SOME_KEY"))
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

    /// SIGTERM during a recording: the client still gets the whole stream and the recording is written.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/curl"), "needs curl"))
    func sigtermFinishesInFlightRecordings() throws {
        // The upstream is another api-recorder replaying a slow stream (gaps of 400 ms).
        let upstreamRoot = try TemporaryDirectory()
        let body: JSONValue = ["model": "m", "messages": [["role": "user", "content": "slowly"]], "stream": true]
        let chunks: [JSONValue] = ["a", "b", "c"].map { text in
            ResponseNormalization.typed(
                "openai.types.chat.chat_completion_chunk.ChatCompletionChunk",
                data: [
                    "id": "x", "object": "chat.completion.chunk", "created": 1,
                    "choices": [["index": 0, "delta": ["content": .string(text)], "finish_reason": nil]],
                ],
                requestHash: "0"
            )
        }
        try RecordingStore(root: upstreamRoot.path).save(
            Recording.inference(
                testID: nil,
                method: "POST",
                url: "http://127.0.0.1:9/v1/chat/completions",
                body: body,
                endpoint: "/v1/chat/completions",
                model: "m",
                outcome: .stream(chunks),
                extraResponseKeys: ["chunk_offsets_ms": [0, 400, 800]]
            )
        )
        let (upstream, upstreamLine, _) = try start(
            ["--root", upstreamRoot.path, "--upstream", "up=http://127.0.0.1:9/v1", "--pace", "recorded"])
        defer { upstream.terminate() }
        let upstreamPort = upstreamLine.split(separator: " ")[3].split(separator: ":").last!

        let frontRoot = try TemporaryDirectory()
        let (front, frontLine, _) = try start(
            ["--mode", "record", "--root", frontRoot.path, "--upstream", "front=http://127.0.0.1:\(upstreamPort)/up"])
        let frontPort = frontLine.split(separator: " ")[3].split(separator: ":").last!

        let curl = Process()
        curl.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        curl.arguments = [
            "-sN", "--max-time", "20", "http://127.0.0.1:\(frontPort)/front/chat/completions",
            "-H", "Content-Type: application/json", "-d", String(decoding: body.compactBytes(), as: UTF8.self),
        ]
        let output = Pipe()
        curl.standardOutput = output
        try curl.run()
        // Wait for the first event, so the stream is surely in flight, then SIGTERM.
        var received = ""
        while !received.contains("data:") {
            let data = output.fileHandleForReading.availableData
            if data.isEmpty { break }
            received += String(decoding: data, as: UTF8.self)
        }
        front.terminate()
        received += String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        curl.waitUntilExit()
        front.waitUntilExit()
        #expect(received.hasSuffix("data: [DONE]\n\n"), "client got: \(received)")
        #expect(front.terminationStatus == 0)
        let files = frontRoot.files().filter { $0.hasSuffix(".json") }
        #expect(files.count == 1)
        if let file = files.first {
            let recording = try Recording(contentsOfFile: "\(frontRoot.path)/\(file)")
            #expect(recording.chunks?.count == 3)
        }
    }

    /// `serve` recording from an upstream that never answers, with one request in flight to it.
    private func proxyWaitingOnAHungUpstream(
        grace: Int
    ) throws -> (proxy: Process, client: Process, root: TemporaryDirectory, upstream: SilentListener) {
        let hung = try SilentListener()
        let root = try TemporaryDirectory()
        let (proxy, line, _) = try start([
            "--mode", "record", "--root", root.path, "--upstream", "up=http://127.0.0.1:\(hung.port)/v1",
            "--shutdown-grace", String(grace),
        ])
        let port = line.split(separator: " ")[3].split(separator: ":").last!
        let body: JSONValue = ["model": "m", "messages": [["role": "user", "content": "hang"]]]
        let client = Process()
        client.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        client.arguments = [
            "-sN", "--max-time", "30", "http://127.0.0.1:\(port)/up/chat/completions",
            "-H", "Content-Type: application/json", "-d", String(decoding: body.compactBytes(), as: UTF8.self),
        ]
        client.standardOutput = FileHandle.nullDevice
        client.standardError = FileHandle.nullDevice
        try client.run()
        Thread.sleep(forTimeInterval: 0.5)  // the request is in flight, waiting for the upstream
        return (proxy, client, root, hung)
    }

    /// SIGTERM while the upstream hangs: the exchange is cancelled after --shutdown-grace, and
    /// nothing is written.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/curl"), "needs curl"))
    func shutdownHasADeadline() throws {
        let (proxy, client, root, upstream) = try proxyWaitingOnAHungUpstream(grace: 1)
        defer { withExtendedLifetime(upstream) {} }
        let start = Date()
        proxy.terminate()
        proxy.waitUntilExit()
        let took = Date().timeIntervalSince(start)
        client.waitUntilExit()
        #expect(took < 4, "stopped \(took) s after SIGTERM with a 1 s grace")
        #expect(proxy.terminationReason == .exit && proxy.terminationStatus == 0)
        #expect(root.files().isEmpty, "nothing partial is written: \(root.files())")
    }

    /// A second signal during the graceful shutdown exits at once.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/curl"), "needs curl"))
    func aSecondSignalExitsAtOnce() throws {
        let (proxy, client, root, upstream) = try proxyWaitingOnAHungUpstream(grace: 60)
        defer { withExtendedLifetime(upstream) {} }
        proxy.terminate()
        Thread.sleep(forTimeInterval: 0.5)
        #expect(proxy.isRunning, "the first signal waits for the in-flight exchange")
        let start = Date()
        proxy.terminate()
        proxy.waitUntilExit()
        client.terminate()
        #expect(Date().timeIntervalSince(start) < 2)
        #expect(proxy.terminationStatus == 128 + SIGTERM)
        #expect(root.files().isEmpty)
    }
}
