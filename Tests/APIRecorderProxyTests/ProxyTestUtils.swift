import APIRecorder
import APIRecorderProxy
import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Synchronization
import ServerTestSupport
import TestSupport

let testLogger: Logger = {
    var logger = Logger(label: "api-recorder.tests")
    logger.logLevel = ProcessInfo.processInfo.environment["API_RECORDER_TEST_LOG"] != nil ? .debug : .critical
    return logger
}()

/// Runs the proxy against `upstreamPort` with a fresh recordings root.
func withProxy(
    mode: RecordingMode, root: String, upstreamPort: Int?, pace: ReplayPace = .none,
    configure: (inout ProxyConfiguration) -> Void = { _ in }, _ body: (Int) async throws -> Void
) async throws {
    var configuration = ProxyConfiguration()
    configuration.port = 0
    configuration.mode = mode
    configuration.root = root
    configuration.pace = pace
    configuration.upstreamTimeout = .seconds(5)
    configuration.routes = [ProxyRoute(name: "up", upstream: "http://127.0.0.1:\(upstreamPort ?? 9)/v1")]
    configure(&configuration)
    let frozen = configuration
    try await withRunning({ buildApplication(frozen, logger: testLogger, onListening: $0) }, body)
}

/// An OpenAI-like upstream on port 0 whose behaviour each test controls: it counts calls and can
/// hold a stream open until the test releases it.
final class TestUpstream: Sendable {
    let calls = Atomic<Int>(0)
    let streamGate = AsyncGate()
    let lastAuthorization = Mutex<String?>(nil)
    let lastKeyHeaders = Mutex<[String]>([])
    let lastQuery = Mutex<String?>(nil)

    func application(onListening: @escaping @Sendable (Int) async -> Void) -> some ApplicationProtocol {
        let router = Router()
        router.post("/v1/chat/completions") { request, _ -> Response in
            self.calls.add(1, ordering: .relaxed)
            self.lastAuthorization.withLock { $0 = request.headers[.authorization] }
            self.lastKeyHeaders.withLock { keys in
                keys = ["x-goog-api-key", "x-api-key", "api-key"].compactMap { HTTPField.Name($0).flatMap { request.headers[$0] } }
            }
            self.lastQuery.withLock { $0 = request.uri.query }
            let body = try JSONValue(parsing: Array(buffer: try await request.body.collect(upTo: 1 << 20)))
            let prompt = body["messages"]?.arrayValue?.last?["content"]?.stringValue ?? ""
            if prompt == "slow" { try await Task.sleep(for: .seconds(30)) }
            if prompt == "rate limit" {
                return Self.json(
                    ["error": ["message": "Rate limit reached", "type": "requests", "param": nil, "code": "rate_limit_exceeded"]],
                    status: .tooManyRequests)
            }
            if body["stream"]?.boolValue == true {
                return self.stream(prompt: prompt, failMidway: prompt == "fail midway")
            }
            let toolCall: JSONValue = [
                "id": .string("call_\(UUID().uuidString)"), "type": "function",
                "function": ["name": "get_weather", "arguments": .string(#"{"location": "Paris"}"#)],
            ]
            let message: JSONValue =
                prompt == "call a tool"
                ? ["role": "assistant", "content": nil, "tool_calls": [toolCall]]
                : ["role": "assistant", "content": .string("echo: \(prompt)")]
            return Self.json([
                "id": .string("chatcmpl-\(UUID().uuidString)"), "object": "chat.completion",
                "created": .integer(Int(Date().timeIntervalSince1970)), "model": "test-model",
                "choices": [[
                    "index": 0, "finish_reason": .string(prompt == "call a tool" ? "tool_calls" : "stop"), "message": message,
                ]],
            ])
        }
        router.get("/v1/items") { request, _ -> Response in
            self.calls.add(1, ordering: .relaxed)
            return Self.json(["page": .string(request.uri.queryParameters.get("page") ?? "none")])
        }
        router.get("/v1/models") { _, _ -> Response in
            self.calls.add(1, ordering: .relaxed)
            return Self.json(["object": "list", "data": [["id": "test-model", "object": "model", "created": 1, "owned_by": "me"]]])
        }
        return Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { await onListening($0.localAddress?.port ?? 0) }, logger: testLogger)
    }

    /// Three content chunks; the last waits for `streamGate` so tests can see the first ones arrive early.
    private func stream(prompt: String, failMidway: Bool) -> Response {
        let gate = streamGate
        var headers = HTTPFields()
        headers[.contentType] = "text/event-stream"
        return Response(
            status: .ok, headers: headers,
            body: ResponseBody { writer in
                func chunk(_ delta: JSONValue, finish: JSONValue = nil) -> ByteBuffer {
                    let data: JSONValue = [
                        "id": "chatcmpl-live", "object": "chat.completion.chunk", "created": 1234, "model": "test-model",
                        "choices": [["index": 0, "delta": delta, "finish_reason": finish]],
                    ]
                    return ByteBuffer(bytes: Array("data: ".utf8) + data.compactBytes() + Array("\n\n".utf8))
                }
                try await writer.write(chunk(["role": "assistant", "content": "one "]))
                try await writer.write(chunk(["content": "two "]))
                if failMidway { throw CancellationError() }
                await gate.wait()
                try await writer.write(chunk(["content": .string("three (\(prompt))")], finish: "stop"))
                try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
                try await writer.finish(nil)
            })
    }

    static func json(_ value: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: value.compactBytes())))
    }
}

/// A small client for the tests.
struct TestClient {
    let port: Int
    let client = HTTPClient.shared

    struct Reply {
        let status: Int
        let contentType: String?
        let body: [UInt8]
        var json: JSONValue? { try? JSONValue(parsing: body) }
        var text: String { String(decoding: body, as: UTF8.self) }
    }

    func send(
        _ method: HTTPRequest.Method = .post, _ path: String, body: [UInt8]? = nil, headers: [(String, String)] = []
    ) async throws -> Reply {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
        request.method = .init(rawValue: method.rawValue)
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        let response = try await client.execute(request, timeout: .seconds(30))
        var collected = try await response.body.collect(upTo: 1 << 26)
        return Reply(
            status: Int(response.status.code), contentType: response.headers.first(name: "content-type"),
            body: collected.readBytes(length: collected.readableBytes) ?? [])
    }

    func chat(_ prompt: String, stream: Bool = false, testID: String? = "tests/proxy/test_chat.py::test_it") async throws
        -> Reply
    {
        let body: JSONValue = [
            "model": "test-model", "messages": [["role": "user", "content": .string(prompt)]], "stream": .bool(stream),
        ]
        return try await send(
            .post, "/up/chat/completions", body: body.compactBytes(), headers: testID.map { [("X-Test-ID", $0)] } ?? [])
    }
}

/// Spells a JSON literal where Swift needs the type named.
func json(_ value: JSONValue) -> JSONValue { value }
