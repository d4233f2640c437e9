import APIRecorder
import APIRecorderProxy
import APIRecorderTesting
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import ServerTestSupport
import TestSupport
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The proxy and the in-process hooks write the same files: what one records, the other replays.
@Suite("Proxy and in-process hooks share recordings", .timeLimit(.minutes(2)))
struct CrossFrontEndTests {
    static let testID = "Tests/AgentTests/ChatTests.swift::ChatTests/crossesOver()"

    /// A chat completion sent through the proxy, as any client would.
    func viaProxy(port: Int, prompt: String, stream: Bool = false) async throws -> [UInt8] {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/up/chat/completions")
        request.method = .POST
        request.headers.add(name: "X-Test-ID", value: Self.testID)
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(chatBody(prompt, stream: stream))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        #expect(response.status == .ok)
        return Array(buffer: try await response.body.collect(upTo: 1 << 20))
    }

    /// The same request through URLSession in process.
    func viaURLSession(
        root: String,
        mode: RecordingMode,
        upstreamPort: Int,
        prompt: String,
        stream: Bool = false
    ) async throws -> [UInt8] {
        let scope = try RecordingScope(root: root, mode: mode, testID: Self.testID)
        return try await HookTests.send(
            .urlSession,
            scope: scope,
            url: "http://127.0.0.1:\(upstreamPort)/v1/chat/completions",
            body: chatBody(prompt, stream: stream)
        ).body
    }

    @Test func filesRecordedByEitherAreByteIdentical() async throws {
        let proxyRoot = try TemporaryDirectory()
        let sessionRoot = try TemporaryDirectory()
        try await withRunning(FakeUpstream().application) { upstreamPort in
            try await withProxy(mode: .record, root: proxyRoot.path, upstreamPort: upstreamPort) { port in
                _ = try await viaProxy(port: port, prompt: "same")
            }
            _ = try await viaURLSession(
                root: sessionRoot.path,
                mode: .record,
                upstreamPort: upstreamPort,
                prompt: "same"
            )
        }
        let files = proxyRoot.files()
        #expect(files.count == 1)
        #expect(sessionRoot.files() == files)
        for file in files {
            let a = try readBytes("\(proxyRoot.path)/\(file)")
            let b = try readBytes("\(sessionRoot.path)/\(file)")
            #expect(Bool(a == b), "\(file) differs between the proxy and URLSession")
        }
    }

    @Test func aProxyRecordingReplaysThroughURLSession() async throws {
        let root = try TemporaryDirectory()
        var live: [[UInt8]] = []
        var upstreamPort = 0
        try await withRunning(FakeUpstream().application) { port in
            upstreamPort = port
            try await withProxy(mode: .record, root: root.path, upstreamPort: port) { proxyPort in
                live.append(try await viaProxy(port: proxyPort, prompt: "whole"))
                live.append(try await viaProxy(port: proxyPort, prompt: "streamed", stream: true))
            }
        }
        // Upstream and proxy gone.
        let whole = try await viaURLSession(root: root.path, mode: .replay, upstreamPort: upstreamPort, prompt: "whole")
        let streamed = try await viaURLSession(
            root: root.path,
            mode: .replay,
            upstreamPort: upstreamPort,
            prompt: "streamed",
            stream: true
        )
        #expect(Bool(whole == live[0]))
        #expect(Bool(streamed == live[1]))
    }

    @Test func aURLSessionRecordingReplaysThroughTheProxy() async throws {
        let root = try TemporaryDirectory()
        var live: [[UInt8]] = []
        var upstreamPort = 0
        try await withRunning(FakeUpstream().application) { port in
            upstreamPort = port
            live.append(try await viaURLSession(root: root.path, mode: .record, upstreamPort: port, prompt: "whole"))
            live.append(
                try await viaURLSession(
                    root: root.path,
                    mode: .record,
                    upstreamPort: port,
                    prompt: "streamed",
                    stream: true
                )
            )
        }
        try await withProxy(mode: .replay, root: root.path, upstreamPort: upstreamPort) { proxyPort in
            let whole = try await viaProxy(port: proxyPort, prompt: "whole")
            let streamed = try await viaProxy(port: proxyPort, prompt: "streamed", stream: true)
            #expect(Bool(whole == live[0]))
            #expect(Bool(streamed == live[1]))
        }
    }
}
