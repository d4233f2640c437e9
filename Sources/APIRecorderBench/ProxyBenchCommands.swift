import APIRecorder
import APIRecorderProxy
import ArgumentParser
import AsyncHTTPClient
import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import Synchronization

/// `api-recorder bench static-server`: the ceiling for replay throughput — a bare Hummingbird
/// server answering every request with the same bytes from memory.
struct StaticServerBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "static-server",
        abstract: "Serve one file's bytes for every request (the throughput ceiling)."
    )

    @Option(help: "The response body.")
    var body: String

    @Option(help: "Port; 0 picks one.")
    var port = 0

    @Option(help: "The response's content type.")
    var contentType = "application/json"

    func run() async throws {
        guard let data = FileManager.default.contents(atPath: body) else {
            throw ValidationError("cannot read \(body)")
        }
        let bytes = ByteBuffer(bytes: [UInt8](data))
        let contentType = self.contentType
        var logger = Logger(label: "static-server")
        logger.logLevel = .critical
        let app = Application(
            responder: CallbackResponder { (request: Request, _: BasicRequestContext) in
                _ = try await request.body.collect(upTo: 1 << 20)
                var headers = HTTPFields()
                headers[.contentType] = contentType
                return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: bytes))
            },
            configuration: .init(address: .hostname("127.0.0.1", port: port)),
            onServerRunning: { channel in
                FileHandle.standardOutput.write(
                    Data("static-server listening on http://127.0.0.1:\(channel.localAddress?.port ?? 0)\n".utf8)
                )
            },
            logger: logger
        )
        try await app.runService()
    }
}

/// Runs the proxy in this process for a benchmark, on a free port.
private func withBenchProxy(
    _ configuration: ProxyConfiguration,
    _ body: @escaping @Sendable (Int) async throws -> Void
) async throws {
    var logger = Logger(label: "bench")
    logger.logLevel = .critical
    let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
    let app = buildApplication(configuration, logger: logger) { continuation.yield($0) }
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await app.runService(gracefulShutdownSignals: []) }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else { return }
        try await body(port)
        group.cancelAll()
    }
}

private func milliseconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
}

private func percentile(_ values: [Double], _ fraction: Double) -> Double {
    let sorted = values.sorted()
    return sorted[min(sorted.count - 1, Int(Double(sorted.count - 1) * fraction))]
}

private func chatRequestBody(_ prompt: String, stream: Bool) -> [UInt8] {
    JSONValue.object([
        "model": "bench", "messages": [["role": "user", "content": .string(prompt)]], "stream": .bool(stream),
    ]).compactBytes()
}

/// Times one request from send to last byte (and to first byte).
private func timeRequest(url: String, body: [UInt8]) async throws -> (first: Double, last: Double, bytes: Int) {
    var request = HTTPClientRequest(url: url)
    request.method = .POST
    request.headers.add(name: "Content-Type", value: "application/json")
    request.body = .bytes(ByteBuffer(bytes: body))
    let clock = ContinuousClock()
    let start = clock.now
    let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
    var first: Double?
    var count = 0
    for try await buffer in response.body {
        if first == nil { first = milliseconds(clock.now - start) }
        count += buffer.readableBytes
    }
    return (first ?? milliseconds(clock.now - start), milliseconds(clock.now - start), count)
}

/// `api-recorder bench stream`: time to last byte of a long recorded stream, replayed unpaced.
struct StreamReplayBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stream",
        abstract: "Replay a recorded N-chunk stream and time it to the last byte."
    )

    @Option(help: "Chunks in the recorded stream.")
    var chunks = 500

    @Option(help: "Timed runs (after 20 warm-up runs).")
    var runs = 200

    func run() async throws {
        let root = temporaryRoot()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let body = chatRequestBody("stream bench", stream: true)
        let requestJSON = try JSONValue(parsing: body)
        let url = "http://bench.invalid/v1/chat/completions"
        let hash = RequestIdentity.inference(method: "POST", url: url, body: requestJSON, testID: nil).hash
        let chunkValues: [JSONValue] = (0..<chunks).map { index in
            ResponseNormalization.typed(
                "openai.types.chat.chat_completion_chunk.ChatCompletionChunk",
                data: [
                    "id": "x", "object": "chat.completion.chunk", "created": 1, "model": "bench",
                    "choices": [["index": 0, "delta": ["content": .string("token\(index) ")], "finish_reason": nil]],
                ],
                requestHash: hash
            )
        }
        let recording = Recording.inference(
            testID: nil,
            method: "POST",
            url: url,
            body: requestJSON,
            endpoint: "/v1/chat/completions",
            model: "bench",
            outcome: .stream(chunkValues)
        )
        try RecordingStore(root: root).save(recording)

        var configuration = ProxyConfiguration()
        configuration.port = 0
        configuration.mode = .replay
        configuration.root = root
        configuration.routes = [ProxyRoute(name: "bench", upstream: "http://bench.invalid/v1")]
        let runs = self.runs
        let chunks = self.chunks
        try await withBenchProxy(configuration) { port in
            let target = "http://127.0.0.1:\(port)/bench/chat/completions"
            for _ in 0..<20 { _ = try await timeRequest(url: target, body: body) }
            var lasts: [Double] = []
            var size = 0
            for _ in 0..<runs {
                let timing = try await timeRequest(url: target, body: body)
                lasts.append(timing.last)
                size = timing.bytes
            }
            print(
                "stream replay: \(chunks) chunks, \(size) bytes; time to last byte median "
                    + String(
                        format: "%.2f ms, p90 %.2f ms (target < 10 ms)",
                        percentile(lasts, 0.5),
                        percentile(lasts, 0.9)
                    )
            )
        }
    }
}

/// `api-recorder bench record-overhead`: time to first chunk added by recording through the proxy.
struct RecordOverheadBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "record-overhead",
        abstract:
            "Compare time to first chunk calling a streaming upstream directly and through the proxy in record mode."
    )

    @Option(help: "Timed runs of each (alternating, after warm-up).")
    var runs = 200

    func run() async throws {
        // A streaming upstream: the first chunk at once, then nine more.
        let upstream = streamingUpstream(chunks: 10, gap: nil)
        let root = temporaryRoot()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let runs = self.runs
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await upstream.runService(gracefulShutdownSignals: []) }
            let upstreamPort = await UpstreamPort.shared.wait()
            var configuration = ProxyConfiguration()
            configuration.port = 0
            configuration.mode = .record
            configuration.root = root
            configuration.routes = [ProxyRoute(name: "up", upstream: "http://127.0.0.1:\(upstreamPort)/v1")]
            try await withBenchProxy(configuration) { port in
                let direct = "http://127.0.0.1:\(upstreamPort)/v1/chat/completions"
                let proxied = "http://127.0.0.1:\(port)/up/chat/completions"
                let body = chatRequestBody("overhead", stream: true)
                for _ in 0..<20 {
                    _ = try await timeRequest(url: direct, body: body)
                    _ = try await timeRequest(url: proxied, body: body)
                }
                var directTimes: [Double] = []
                var proxiedTimes: [Double] = []
                for _ in 0..<runs {
                    directTimes.append(try await timeRequest(url: direct, body: body).first)
                    proxiedTimes.append(try await timeRequest(url: proxied, body: body).first)
                }
                let added = percentile(proxiedTimes, 0.5) - percentile(directTimes, 0.5)
                print(
                    String(
                        format:
                            "record mode: time to first chunk median %.3f ms direct, %.3f ms through the proxy; added %.3f ms (target <= 1 ms)",
                        percentile(directTimes, 0.5),
                        percentile(proxiedTimes, 0.5),
                        added
                    )
                )
            }
            group.cancelAll()
        }
    }
}

/// Hands the upstream's port from its start-up callback to the benchmark.
private final class UpstreamPort: Sendable {
    static let shared = UpstreamPort()
    private let stream: AsyncStream<Int>
    private let continuation: AsyncStream<Int>.Continuation

    init() { (stream, continuation) = AsyncStream.makeStream(of: Int.self) }
    func set(_ port: Int) { continuation.yield(port) }
    func wait() async -> Int {
        var iterator = stream.makeAsyncIterator()
        return await iterator.next() ?? 0
    }
}

/// `api-recorder-bench concurrent-streams`: 64 different streaming requests recorded at once,
/// against one recorded alone. Different requests must reach the upstream in parallel, so the
/// ratio should be close to 1.
struct ConcurrentStreamsBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "concurrent-streams",
        abstract: "Record N different slow streams at once through the proxy and compare with one alone."
    )

    @Option(help: "Streams recorded at once.")
    var streams = 64

    @Option(help: "Chunks in each stream.")
    var chunks = 10

    @Option(help: "Milliseconds between an upstream stream's chunks.")
    var gap = 100

    @Option(help: "Rounds of each (alone, then all at once); the medians are compared.")
    var rounds = 3

    func run() async throws {
        // A slow streaming upstream: `chunks` chunks, `gap` ms apart, for every request.
        let upstream = streamingUpstream(chunks: chunks, gap: .milliseconds(gap))
        var clientConfiguration = HTTPClient.Configuration()
        clientConfiguration.connectionPool = .init(
            idleTimeout: .seconds(60),
            concurrentHTTP1ConnectionsPerHostSoftLimit: streams * 2
        )
        let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: clientConfiguration)
        let (streams, rounds, chunks) = (self.streams, self.rounds, self.chunks)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await upstream.runService(gracefulShutdownSignals: []) }
            let upstreamPort = await UpstreamPort.shared.wait()
            let timings = Mutex<(alone: [Double], together: [Double])>(([], []))
            for round in 0..<rounds {
                let root = temporaryRoot()
                defer { try? FileManager.default.removeItem(atPath: root) }
                var configuration = ProxyConfiguration()
                configuration.port = 0
                configuration.mode = .recordIfMissing
                configuration.root = root
                configuration.routes = [ProxyRoute(name: "up", upstream: "http://127.0.0.1:\(upstreamPort)/v1")]
                try await withBenchProxy(configuration) { port in
                    let url = "http://127.0.0.1:\(port)/up/chat/completions"
                    let clock = ContinuousClock()
                    let start = clock.now
                    _ = try await streamRequest(client, url: url, body: chatRequestBody("alone \(round)", stream: true))
                    let one = milliseconds(clock.now - start)
                    let startAll = clock.now
                    try await withThrowingTaskGroup(of: Void.self) { requests in
                        for index in 0..<streams {
                            requests.addTask {
                                let body = chatRequestBody("stream \(index) of round \(round)", stream: true)
                                _ = try await streamRequest(client, url: url, body: body)
                            }
                        }
                        try await requests.waitForAll()
                    }
                    let all = milliseconds(clock.now - startAll)
                    timings.withLock {
                        $0.alone.append(one)
                        $0.together.append(all)
                    }
                }
                let files = RecordingVerifier.recordingFiles(in: [root]).count
                guard files == streams + 1 else {
                    throw ValidationError("expected \(streams + 1) recordings, found \(files)")
                }
            }
            try await client.shutdown()
            let (alone, together) = timings.withLock { $0 }
            let (one, all) = (percentile(alone, 0.5), percentile(together, 0.5))
            print(
                String(
                    format:
                        "record mode: one %d-chunk stream %.0f ms; %d different streams at once %.0f ms: %.2fx one (target about 1x)",
                    chunks,
                    one,
                    streams,
                    all,
                    all / one
                )
            )
            group.cancelAll()
        }
    }
}

/// Sends a streaming request and reads its body to the end; returns the bytes received.
private func streamRequest(_ client: HTTPClient, url: String, body: [UInt8]) async throws -> Int {
    var request = HTTPClientRequest(url: url)
    request.method = .POST
    request.headers.add(name: "Content-Type", value: "application/json")
    request.body = .bytes(ByteBuffer(bytes: body))
    let response = try await client.execute(request, timeout: .seconds(60))
    guard response.status == .ok else { throw ValidationError("status \(response.status.code) from \(url)") }
    var count = 0
    for try await buffer in response.body { count += buffer.readableBytes }
    return count
}

/// An upstream that answers every request with an SSE stream of `chunks` chat-completion chunks
/// (each after `gap`, when given) and `[DONE]`; it hands its port to ``UpstreamPort``.
private func streamingUpstream(chunks: Int, gap: Duration?) -> some ApplicationProtocol {
    var logger = Logger(label: "bench-upstream")
    logger.logLevel = .critical
    return Application(
        responder: CallbackResponder { (request: Request, _: BasicRequestContext) in
            _ = try await request.body.collect(upTo: 1 << 20)
            var headers = HTTPFields()
            headers[.contentType] = "text/event-stream"
            return Response(
                status: .ok,
                headers: headers,
                body: ResponseBody { writer in
                    for index in 0..<chunks {
                        if let gap { try await Task.sleep(for: gap) }
                        let data: JSONValue = [
                            "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "bench",
                            "choices": [
                                ["index": 0, "delta": ["content": .string("t\(index)")], "finish_reason": nil]
                            ],
                        ]
                        try await writer.write(
                            ByteBuffer(bytes: Array("data: ".utf8) + data.compactBytes() + [10, 10])
                        )
                    }
                    try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
                    try await writer.finish(nil)
                }
            )
        },
        configuration: .init(address: .hostname("127.0.0.1", port: 0)),
        onServerRunning: { channel in UpstreamPort.shared.set(channel.localAddress?.port ?? 0) },
        logger: logger
    )
}

/// `APIRecorderBench miss-diagnosis`: how long a replay miss takes to answer, diagnosis included,
/// in a test folder of many recordings, against a hit in the same run.
struct MissDiagnosisBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "miss-diagnosis",
        abstract: "Time a replay miss (with its nearest-recording diagnosis) in a folder of N recordings, and a hit."
    )

    @Option(help: "Recordings in the test's folder.")
    var recordings = 1000

    @Option(help: "Timed misses (each a different request) and hits, after the first miss.")
    var runs = 50

    func run() async throws {
        let root = temporaryRoot()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let testID = "tests/bench/test_agent.py::test_conversation"
        let url = "http://bench.invalid/v1/chat/completions"
        let store = RecordingStore(root: root)
        // Conversations of a few turns, with answers of a few hundred words: a realistic folder.
        let answer = String(repeating: "The weather in Paris is mild, with light rain expected later. ", count: 40)
        for index in 0..<recordings {
            let body: JSONValue = [
                "model": "gpt-4o", "temperature": 0.2,
                "messages": [
                    ["role": "system", "content": "You are a helpful assistant."],
                    ["role": "user", "content": .string("Question number \(index): what should I pack for Paris?")],
                    ["role": "assistant", "content": .string("An umbrella, for question \(index).")],
                    ["role": "user", "content": "And for the evening?"],
                ],
            ]
            let hash = RequestIdentity.inference(method: "POST", url: url, body: body, testID: testID).hash
            try store.save(
                Recording.inference(
                    testID: testID,
                    method: "POST",
                    url: url,
                    body: body,
                    endpoint: "/v1/chat/completions",
                    model: "gpt-4o",
                    outcome: .body(
                        ResponseNormalization.typed(
                            "openai.types.chat.chat_completion.ChatCompletion",
                            data: [
                                "id": "x", "object": "chat.completion", "created": 1, "model": "gpt-4o",
                                "choices": [
                                    ["index": 0, "message": ["role": "assistant", "content": .string(answer)]]
                                ],
                            ],
                            requestHash: hash
                        )
                    )
                )
            )
        }
        var configuration = ProxyConfiguration()
        configuration.port = 0
        configuration.mode = .replay
        configuration.root = root
        configuration.routes = [ProxyRoute(name: "bench", upstream: "http://bench.invalid/v1")]
        let (count, runs) = (recordings, self.runs)
        try await withBenchProxy(configuration) { port in
            let target = "http://127.0.0.1:\(port)/bench/chat/completions"
            func body(_ index: Int, _ evening: String) -> [UInt8] {
                JSONValue.object([
                    "model": "gpt-4o", "temperature": 0.2,
                    "messages": [
                        ["role": "system", "content": "You are a helpful assistant."],
                        [
                            "role": "user",
                            "content": .string("Question number \(index): what should I pack for Paris?"),
                        ],
                        ["role": "assistant", "content": .string("An umbrella, for question \(index).")],
                        ["role": "user", "content": .string(evening)],
                    ],
                ]).compactBytes()
            }
            func timed(_ body: [UInt8], expecting status: Int) async throws -> Double {
                var request = HTTPClientRequest(url: target)
                request.method = .POST
                request.headers.add(name: "X-Test-ID", value: testID)
                request.body = .bytes(ByteBuffer(bytes: body))
                let clock = ContinuousClock()
                let start = clock.now
                let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
                _ = try await response.body.collect(upTo: 1 << 24)
                guard Int(response.status.code) == status else {
                    throw ValidationError("expected \(status), got \(response.status.code)")
                }
                return milliseconds(clock.now - start)
            }
            let first = try await timed(body(7, "And for the night?"), expecting: 404)
            var misses: [Double] = []
            var hits: [Double] = []
            for run in 0..<runs {
                misses.append(try await timed(body(run, "And for the morning?"), expecting: 404))
                hits.append(try await timed(body(run, "And for the evening?"), expecting: 200))
            }
            let (miss, hit) = (percentile(misses, 0.5), percentile(hits, 0.5))
            print(
                String(
                    format:
                        "replay miss with diagnostics in a folder of %d recordings: first %.1f ms, then median %.1f ms "
                        + "(target < 50 ms); a hit: median %.2f ms; a miss costs %.1fx a hit",
                    count,
                    first,
                    miss,
                    hit,
                    miss / hit
                )
            )
        }
    }
}

/// A fresh folder for a benchmark's recordings (the caller removes it).
private func temporaryRoot() -> String {
    FileManager.default.temporaryDirectory.appendingPathComponent("api-recorder-bench-\(UUID().uuidString)").path
}

/// The per-request work of a replay hit, stage by stage, in process: JSON parse, request identity
/// (normalisation, canonical text, SHA-256), the adapter's whole `prepare`, and the store's
/// look-up (a `stat` and the parse cache). A profiler's view of `bench-proxy.sh`'s replay figure.
struct PrepareBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prepare",
        abstract: "Time the stages of one replay hit for a recording's request, in microseconds."
    )

    @Argument(help: "A recording file; its request is prepared and looked up in its folder's tree.")
    var recording: String

    @Option(help: "The recordings root to look it up in (default: the folder above its recordings/).")
    var root: String?

    @Option(help: "Iterations per stage.")
    var iterations = 100_000

    func run() throws {
        let file = try Recording(contentsOfFile: recording)
        guard case .object(let request) = file.json["request"] ?? .null,
            let url = request["url"]?.stringValue, let bodyValue = request["body"]
        else { throw ValidationError("\(recording): not an inference recording") }
        let body = bodyValue.compactBytes()
        let testID = file.json["test_id"]?.stringValue
        let path = "/" + (url.split(separator: "/", maxSplits: 3).dropFirst(3).first.map(String.init) ?? "")
        let base = String(url.dropLast(path.count))
        let exchangeRequest = ExchangeRequest(
            method: "POST",
            path: path,
            query: nil,
            recordedBase: base,
            headers: [("Content-Type", "application/json"), ("X-Test-ID", testID ?? ""), ("Host", "127.0.0.1")],
            body: body,
            testID: testID,
            upstreamKey: nil
        )
        let adapter = AdapterSelection.openAI
        let folder = (recording as NSString).deletingLastPathComponent
        let store = RecordingStore(root: root ?? (folder as NSString).deletingLastPathComponent)
        let hash = try adapter.prepare(exchangeRequest).hash

        // The fastest of ten rounds: on a shared machine, the others measure the neighbours.
        func time(_ name: String, _ body: () throws -> Void) rethrows {
            let rounds = 10
            var best = Double.infinity
            for _ in 0..<rounds {
                let start = ContinuousClock.now
                for _ in 0..<max(1, iterations / rounds) { try body() }
                let elapsed = ContinuousClock.now - start
                let micros = Double(elapsed.components.attoseconds) / 1e12 + Double(elapsed.components.seconds) * 1e6
                best = min(best, micros / Double(max(1, iterations / rounds)))
            }
            print("  \(name.padding(toLength: 20, withPad: " ", startingAt: 0)) \(String(format: "%7.3f", best)) us")
        }
        print("\(body.count)-byte body, hash \(hash.prefix(12)), fastest of 10 rounds of \(iterations / 10):")
        try time("JSON parse") { _ = try JSONValue(parsing: body) }
        let parsed = try JSONValue(parsing: body)
        let identity = RequestIdentity.inference(method: "POST", url: url, body: parsed, testID: testID)
        time("canonical text") { _ = identity.canonicalBytes }
        time("identity hash") { _ = identity.hash }
        try time("adapter prepare") { _ = try adapter.prepare(exchangeRequest) }
        let preparations = PreparationCache()
        try time("prepare, sent again") { _ = try preparations.prepare(exchangeRequest, with: adapter) }
        guard let found = try store.lookup(hash: hash, testID: testID) else {
            throw ValidationError("\(hash) is not found under \(store.root)")
        }
        time("stat of the file") {
            var info = stat()
            _ = stat(found.path, &info)
        }
        try time("store look-up") {
            guard try store.lookup(hash: hash, testID: testID) != nil else {
                throw ValidationError("\(hash) is not found under the root")
            }
        }
    }
}
