import APIRecorder
import APIRecorderTesting
import AsyncHTTPClient
import Foundation
import HTTPTypes
import NIOCore
import NIOHTTP1
import OpenAPIRuntime
import ServerTestSupport
import Synchronization
import TestSupport
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The three HTTP hooks, each recording against a live in-process upstream and replaying with it
/// stopped; streams arrive chunk by chunk.
@Suite("In-process hooks", .timeLimit(.minutes(2)))
struct HookTests {
    enum Hook: String, CaseIterable, CustomTestStringConvertible {
        /// `URLSession.chunks(for:)`: a data delegate, chunk by chunk.
        case urlSession
        /// `URLSession.data(for:)`: the whole body at once.
        case urlSessionData
        case asyncHTTPClient, openAPI
        var testDescription: String { rawValue }
        /// The hooks that hand out a body as it arrives.
        static let streaming: [Hook] = [.urlSession, .asyncHTTPClient, .openAPI]
    }

    /// Sends a POST through `hook` in `scope`; calls `onChunk` with each body chunk as it arrives.
    static func send(
        _ hook: Hook,
        scope: RecordingScope,
        url: String,
        body: [UInt8],
        onChunk: @Sendable ([UInt8]) async -> Void = { _ in }
    ) async throws -> (status: Int, body: [UInt8]) {
        var received: [UInt8] = []
        switch hook {
        case .urlSession:
            var request = URLRequest(url: URL(string: url)!)
            request.httpMethod = "POST"
            request.httpBody = Data(body)
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            let session = scope.urlSession()
            let (response, chunks) = try await session.chunks(for: request)
            for try await chunk in chunks {
                await onChunk([UInt8](chunk))
                received += chunk
            }
            return ((response as! HTTPURLResponse).statusCode, received)
        case .urlSessionData:
            var request = URLRequest(url: URL(string: url)!)
            request.httpMethod = "POST"
            request.httpBody = Data(body)
            let (data, response) = try await scope.urlSession().data(for: request)
            await onChunk([UInt8](data))
            return ((response as! HTTPURLResponse).statusCode, [UInt8](data))
        case .asyncHTTPClient:
            var request = HTTPClientRequest(url: url)
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(body)
            let response = try await RecordingHTTPClient(scope: scope).execute(request, timeout: .seconds(10))
            for try await buffer in response.body {
                await onChunk(Array(buffer: buffer))
                received += Array(buffer: buffer)
            }
            return (Int(response.status.code), received)
        case .openAPI:
            let parsed = URL(string: url)!
            let base = URL(string: "\(parsed.scheme!)://\(parsed.host!):\(parsed.port!)")!
            let request = HTTPRequest(
                method: .post,
                scheme: nil,
                authority: nil,
                path: parsed.path,
                headerFields: [.contentType: "application/json"]
            )
            let (response, responseBody) = try await RecordingClientTransport(scope: scope).send(
                request,
                body: HTTPBody(body),
                baseURL: base,
                operationID: "createChatCompletion"
            )
            if let responseBody {
                for try await chunk in responseBody {
                    await onChunk(Array(chunk))
                    received += chunk
                }
            }
            return (response.status.code, received)
        }
    }

    @Test(arguments: Hook.allCases)
    func recordsThenReplaysWithTheUpstreamStopped(_ hook: Hook) async throws {
        let directory = try TemporaryDirectory()
        let testID = "Tests/AgentTests/ChatTests.swift::ChatTests/\(hook)()"
        let upstream = FakeUpstream()
        var port = 0
        var live: [(Int, [UInt8])] = []
        try await withRunning(upstream.application) { upstreamPort in
            port = upstreamPort
            let scope = try RecordingScope(root: directory.path, mode: .record, testID: testID)
            let url = "http://127.0.0.1:\(port)/v1/chat/completions"
            live.append(try await Self.send(hook, scope: scope, url: url, body: chatBody("whole")))
            live.append(try await Self.send(hook, scope: scope, url: url, body: chatBody("streamed", stream: true)))
        }
        #expect(upstream.calls.load(ordering: .relaxed) == 2)
        #expect(live[0].0 == 200)
        #expect(
            try JSONValue(parsing: live[0].1)["choices"]?.arrayValue?.first?["message"]?["content"] == "echo: whole"
        )
        #expect(streamedText(live[1].1) == "one two three (streamed)", "\(String(decoding: live[1].1, as: UTF8.self))")

        let files = directory.files()
        #expect(files.count == 2)
        #expect(files.allSatisfy { $0.hasPrefix("Tests/AgentTests/recordings/") })
        for file in files { #expect(RecordingVerifier.verify(path: "\(directory.path)/\(file)").isOK, "\(file)") }

        // The upstream is gone: replay answers the same, byte for byte.
        let scope = try RecordingScope(root: directory.path, mode: .replay, testID: testID)
        let url = "http://127.0.0.1:\(port)/v1/chat/completions"
        let whole = try await Self.send(hook, scope: scope, url: url, body: chatBody("whole"))
        let streamed = try await Self.send(hook, scope: scope, url: url, body: chatBody("streamed", stream: true))
        #expect(whole.status == 200 && Bool(whole.body == live[0].1))
        #expect(streamed.status == 200 && Bool(streamed.body == live[1].1))
        #expect(scope.recorder.report().hits == 2)
    }

    @Test(arguments: Hook.streaming)
    func streamsArriveBeforeTheUpstreamHasSentTheLastChunk(_ hook: Hook) async throws {
        let directory = try TemporaryDirectory()
        let upstream = FakeUpstream()
        upstream.streamGate.close()
        let firstBeforeRelease = Atomic<Bool>(false)
        let chunksSeen = Atomic<Int>(0)
        let timedOut = Flag()
        try await withRunning(upstream.application) { port in
            let scope = try RecordingScope(root: directory.path, mode: .record, testID: "Tests/T/S.swift::S/\(hook)()")
            let gate = upstream.streamGate
            // Opens the upstream's gate after a while even if no chunk came, so a buffering hook
            // fails the expectation below instead of hanging.
            let fallback = Task {
                guard (try? await Task.sleep(for: .seconds(10))) != nil else { return }
                timedOut.set()
                gate.open()
            }
            let reply = try await Self.send(
                hook,
                scope: scope,
                url: "http://127.0.0.1:\(port)/v1/chat/completions",
                body: chatBody("now", stream: true)
            ) { _ in
                if chunksSeen.add(1, ordering: .relaxed).newValue == 1 {
                    // Unless the fallback fired, the upstream is still holding the rest of its stream.
                    firstBeforeRelease.store(!timedOut.isSet, ordering: .relaxed)
                    gate.open()
                }
            }
            fallback.cancel()
            #expect(streamedText(reply.body) == "one two three (now)")
        }
        let incremental = firstBeforeRelease.load(ordering: .relaxed)
        let seen = chunksSeen.load(ordering: .relaxed)
        #expect(incremental, "the first chunk reached the caller while the upstream held the rest")
        #expect(seen >= 2)
        #expect(directory.files().count == 1)
    }

    @Test func parallelScopesWithDifferentTestIDsDoNotCross() async throws {
        let directory = try TemporaryDirectory()
        let upstream = FakeUpstream()
        let count = 8
        let testID: @Sendable (Int) -> String = { "Tests/Parallel/P\($0).swift::P/t()" }
        try await withRunning(upstream.application) { port in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<count {
                    group.addTask {
                        let scope = try RecordingScope(root: directory.path, mode: .record, testID: testID(index))
                        try await scope.withValue {
                            // The same prompt everywhere: only the test id tells the recordings apart.
                            let reply = try await Self.send(
                                .urlSession,
                                scope: RecordingScope.current!,
                                url: "http://127.0.0.1:\(port)/v1/chat/completions",
                                body: chatBody("same")
                            )
                            #expect(reply.status == 200)
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
        let files = directory.files()
        #expect(files.count == count)
        for index in 0..<count {
            let mine = files.filter { $0.hasPrefix("Tests/Parallel/recordings/") }
            #expect(mine.count == count)
            let recordings = try mine.map { try Recording(contentsOfFile: "\(directory.path)/\($0)") }
            #expect(recordings.filter { $0.testID == testID(index) }.count == 1)
        }
    }

    /// In process, failing upstreams get the same statuses as through the proxy (one pipeline).
    @Test func upstreamFailuresAreTheProxysStatuses() async throws {
        let directory = try TemporaryDirectory()
        let upstream = FakeUpstream()
        try await withRunning(upstream.application) { port in
            let scope = try RecordingScope(root: directory.path, mode: .record, testID: "Tests/T/F.swift::F/t()")
            var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/v1/chat/completions")
            request.method = .POST
            request.body = .bytes(chatBody("slow"))
            let timedOut = try await RecordingHTTPClient(scope: scope).execute(request, timeout: .milliseconds(500))
            #expect(timedOut.status.code == 504)
            let body = try JSONValue(parsing: Array(buffer: try await timedOut.body.collect(upTo: 1 << 20)))
            #expect(body["error"]?["type"] == "upstream_timeout")
        }
        let scope = try RecordingScope(root: directory.path, mode: .record, testID: "Tests/T/F.swift::F/t()")
        let clock = ContinuousClock()
        let start = clock.now
        let refused = try await Self.send(
            .asyncHTTPClient,
            scope: scope,
            url: "http://127.0.0.1:9/v1/chat/completions",
            body: chatBody("x")
        )
        #expect(refused.status == 502 && clock.now - start < .seconds(1))
        #expect(try JSONValue(parsing: refused.body)["error"]?["type"] == "upstream_unreachable")
        #expect(directory.files().isEmpty)
    }

    @Test func dataTasksWithCompletionHandlersAreRecordedToo() async throws {
        let directory = try TemporaryDirectory()
        let upstream = FakeUpstream()
        var live = Data()
        let url = Mutex<String>("")
        try await withRunning(upstream.application) { port in
            url.withLock { $0 = "http://127.0.0.1:\(port)/search" }
            let scope = try RecordingScope(root: directory.path, mode: .record, testID: "Tests/T/Search.swift::S/t()")
            live = try await Self.dataTask(scope: scope, url: url.withLock { $0 })
        }
        let scope = try RecordingScope(root: directory.path, mode: .replay, testID: "Tests/T/Search.swift::S/t()")
        let replayed = try await Self.dataTask(scope: scope, url: url.withLock { $0 })
        #expect(!live.isEmpty && replayed == live)
        #expect(try JSONValue(parsing: [UInt8](replayed))["results"]?.arrayValue?.first?["score"] == 0.91)
    }

    /// `RecordingURLProtocol` installed globally (when the test plan is prepared) serves
    /// `URLSession.shared`; the request names its test by `X-Test-ID`, as with the proxy, so
    /// parallel tests don't cross.
    @Test(.recording(mode: .record, root: Roots.global, globalURLProtocol: true))
    func aGloballyInstalledProtocolServesTheSharedSession() async throws {
        let testID = try #require(RecordingScope.current?.testID)
        let upstream = FakeUpstream()
        var live = Data()
        var port = 0
        try await withRunning(upstream.application) { upstreamPort in
            port = upstreamPort
            live = try await Self.sharedSessionSearch(port: port, testID: testID)
        }
        #expect(upstream.calls.load(ordering: .relaxed) == 1)
        let files = TemporaryDirectory.files(in: Roots.global)
        #expect(files.count == 1 && files.first?.hasPrefix("Tests/APIRecorderTestingTests/recordings/") == true)

        let recording = try Recording(contentsOfFile: Roots.global + "/" + files[0])
        #expect(recording.testID == testID)
        #expect(try JSONValue(parsing: [UInt8](live))["query"] == "Lyon")
    }

    static func sharedSessionSearch(port: Int, testID: String) async throws -> Data {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)/search")!)
        request.httpMethod = "POST"
        request.httpBody = Data(#"{"query": "Lyon"}"#.utf8)
        request.setValue(testID, forHTTPHeaderField: "X-Test-ID")
        let (data, response) = try await URLSession.shared.data(for: request)
        #expect((response as? HTTPURLResponse)?.statusCode == 200)
        return data
    }

    /// Keys in headers, body and query go upstream but never into a recording or its identity.
    @Test func secretsNeverReachARecording() async throws {
        let directory = try TemporaryDirectory()
        let secret = "sk-secret-\(UUID().uuidString)"
        try await withRunning(FakeUpstream().application) { port in
            let scope = try RecordingScope(root: directory.path, mode: .record, testID: "Tests/T/Secret.swift::S/t()")
            var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)/search?key=\(secret)")!)
            request.httpMethod = "POST"
            request.httpBody = Data(#"{"query": "Paris", "api_key": "\#(secret)"}"#.utf8)
            for header in ["Authorization", "x-api-key", "x-goog-api-key", "api-key", "Cookie"] {
                request.setValue(header == "Authorization" ? "Bearer \(secret)" : secret, forHTTPHeaderField: header)
            }
            let (_, response) = try await scope.urlSession().data(for: request)
            #expect((response as? HTTPURLResponse)?.statusCode == 200)
        }
        let files = directory.files()
        #expect(files.count == 1)
        for file in files {
            #expect(!String(decoding: try readBytes("\(directory.path)/\(file)"), as: UTF8.self).contains(secret))
        }
    }

    static func dataTask(scope: RecordingScope, url: String) async throws -> Data {
        var request = URLRequest(url: URL(string: url)!)
        request.httpMethod = "POST"
        request.httpBody = Data(#"{"query": "Paris"}"#.utf8)
        let session = scope.urlSession()
        return try await withCheckedThrowingContinuation { continuation in
            session.dataTask(with: request) { data, response, error in
                if let error { return continuation.resume(throwing: error) }
                continuation.resume(returning: data ?? Data())
            }.resume()
        }
    }
}
