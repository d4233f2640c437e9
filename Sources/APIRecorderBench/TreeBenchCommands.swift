import APIRecorder
import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// `APIRecorderBench unused-list`: a tree of N recordings in the reference's layout, served by the
/// real `api-recorder serve`: its resident memory after replaying M distinct recordings, and how
/// long the session report's unused-recordings list takes over the tree, each against a baseline
/// of the same run (the idle server; `find TREE -path '*/recordings/*.json' | sort`).
struct UnusedListBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unused-list",
        abstract: "Memory after replaying M distinct recordings of an N-recording tree, and the unused list's time."
    )

    @Option(help: "The api-recorder binary to serve with.")
    var binary: String

    @Option(help: "Recordings in the tree.")
    var recordings = 100_000

    @Option(help: "Distinct recordings replayed before memory is read.")
    var replays = 10_000

    @Option(help: "Where the tree is made (removed afterwards, unless --keep).")
    var folder: String

    @Flag(help: "Keep the tree, and reuse one already there (for repeated runs).")
    var keep = false

    private static let url = "https://api.openai.com/v1/chat/completions"

    /// The test id and request body of recording `index`: 1,000 test files, each with its tests.
    private static func request(_ index: Int) -> (testID: String, body: JSONValue) {
        let testID = "tests/suite\(index % 1000)/test_chat.py::test_\(index)"
        let body: JSONValue = [
            "model": "gpt-4o-mini", "temperature": 0,
            "messages": [
                ["role": "system", "content": "You are a terse assistant."],
                ["role": "user", "content": .string("Question \(index): what is \(index) squared?")],
            ],
        ]
        return (testID, body)
    }

    func run() async throws {
        defer { if !keep { try? FileManager.default.removeItem(atPath: folder) } }
        let store = RecordingStore(root: folder)
        let clock = ContinuousClock()
        let made = clock.now
        let existing = keep && FileManager.default.fileExists(atPath: folder)
        for index in 0..<(existing ? 0 : recordings) {
            let (testID, body) = Self.request(index)
            let hash = RequestIdentity.inference(method: "POST", url: Self.url, body: body, testID: testID).hash
            let data: JSONObject = [
                "id": "x", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
                "choices": [
                    ["index": 0, "message": ["role": "assistant", "content": .string("\(index * index).")]]
                ],
                "usage": ["prompt_tokens": 20, "completion_tokens": 3, "total_tokens": 23],
            ]
            try store.save(
                Recording.inference(
                    testID: testID,
                    method: "POST",
                    url: Self.url,
                    body: body,
                    endpoint: "/v1/chat/completions",
                    model: "gpt-4o-mini",
                    outcome: .body(
                        ResponseNormalization.typed(
                            "openai.types.chat.chat_completion.ChatCompletion",
                            data: data,
                            requestHash: hash
                        )
                    )
                ),
                hash: hash
            )
        }
        if !existing {
            FileHandle.standardError.write(
                Data("unused-list: made \(recordings) recordings in \(Int(milliseconds(clock.now - made))) ms\n".utf8)
            )
        }
        // Where the time of the list goes, in this process (the server's figure is below).
        let recorder = Recorder(store: store, mode: .replay)
        let listed = clock.now
        let inProcess = recorder.report()
        let reported = clock.now
        let bytes = inProcess.json.compactBytes()
        FileHandle.standardError.write(
            Data(
                ("unused-list: in process, report \(Int(milliseconds(reported - listed))) ms "
                    + "(\(inProcess.unused.count) unused), its JSON \(Int(milliseconds(clock.now - reported))) ms, "
                    + "\(bytes.count) bytes\n").utf8
            )
        )

        let server = Process()
        server.executableURL = URL(fileURLWithPath: binary)
        server.arguments = [
            "serve", "--port", "0", "--mode", "replay", "--root", folder, "--provider", "openai",
            "--upstream", "openai=http://127.0.0.1:9/v1", "--log-level", "error",
        ]
        let output = Pipe()
        server.standardOutput = output
        server.standardInput = FileHandle.nullDevice
        try server.run()
        defer { server.terminate() }
        let banner = String(decoding: output.fileHandleForReading.availableData, as: UTF8.self)
        guard let match = banner.firstMatch(of: /127\.0\.0\.1:(\d+)/), let port = Int(match.1) else {
            throw ValidationError("unexpected banner: \(banner)")
        }
        let base = "http://127.0.0.1:\(port)"
        let idle = residentMegabytes(server.processIdentifier)

        // M distinct replays, 8 at a time.
        let replays = min(self.replays, recordings)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<8 {
                group.addTask {
                    for index in stride(from: worker, to: replays, by: 8) {
                        let (testID, body) = Self.request(index * (recordings / replays))
                        var request = HTTPClientRequest(url: base + "/openai/chat/completions")
                        request.method = .POST
                        request.headers.add(name: "X-Test-ID", value: testID)
                        request.headers.add(name: "Content-Type", value: "application/json")
                        request.body = .bytes(ByteBuffer(bytes: body.compactBytes()))
                        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
                        _ = try await response.body.collect(upTo: 1 << 20)
                        guard response.status == .ok else {
                            throw ValidationError("replay \(index) answered \(response.status.code)")
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        let resident = residentMegabytes(server.processIdentifier)

        // The unused list: the session report computes it over the whole tree.
        var reportTimes: [Double] = []
        var unused = 0
        for _ in 0..<3 {
            let start = clock.now
            let response = try await HTTPClient.shared.execute(
                HTTPClientRequest(url: base + "/__recorder/report"),
                timeout: .seconds(120)
            )
            let body = try await response.body.collect(upTo: 1 << 30)
            reportTimes.append(milliseconds(clock.now - start))
            unused = try JSONValue(parsing: Array(buffer: body))["unused"]?.arrayValue?.count ?? -1
        }
        var findTimes: [Double] = []
        for _ in 0..<3 {
            let start = clock.now
            let find = Process()
            find.executableURL = URL(fileURLWithPath: "/bin/sh")
            find.arguments = ["-c", "find \"$0\" -path '*/recordings/*.json' | LC_ALL=C sort > /dev/null", folder]
            try find.run()
            find.waitUntilExit()
            findTimes.append(milliseconds(clock.now - start))
        }
        let (report, walk) = (reportTimes.sorted()[1], findTimes.sorted()[1])
        guard unused == recordings - replays else {
            throw ValidationError("the report lists \(unused) unused recordings, not \(recordings - replays)")
        }
        print(
            String(
                format:
                    "unused-recordings list of %d recordings (%d unused): %.0f ms (target < 500 ms); "
                    + "find | sort: %.0f ms; %.2fx the bare walk",
                recordings,
                unused,
                report,
                walk,
                report / walk
            )
        )
        print(
            String(
                format:
                    "resident memory after replaying %d distinct recordings: %.1f MB (target < 100 MB); idle %.1f MB; "
                    + "%.2fx idle",
                replays,
                resident,
                idle,
                resident / idle
            )
        )
    }
}

/// A process's resident memory (`VmRSS` of /proc/PID/status), in MB.
private func residentMegabytes(_ pid: Int32) -> Double {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
        let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
        let kilobytes = Double(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
    else { return 0 }
    return kilobytes / 1024
}

private func milliseconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
}
