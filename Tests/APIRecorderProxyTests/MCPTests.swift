import APIRecorder
import APIRecorderProxy
import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTP1
import ServerTestSupport
import Synchronization
import TestSupport
import Testing

/// MCP over streamable HTTP through the proxy, against an in-process MCP-like server. (The
/// official `mcp` SDK, client and server, is exercised by the Python suite.)
@Suite("MCP routes", .timeLimit(.minutes(2)))
struct MCPTests {
    final class Server: Sendable {
        let posts = Atomic<Int>(0)

        func application(onListening: @escaping @Sendable (Int) async -> Void) -> some ApplicationProtocol {
            let router = Router()
            router.post("/mcp") { request, _ -> Response in
                self.posts.add(1, ordering: .relaxed)
                let message = try JSONValue(parsing: Array(buffer: try await request.body.collect(upTo: 1 << 20)))
                guard let id = message["id"], let method = message["method"]?.stringValue else {
                    return Response(status: .accepted)
                }
                var messages: [JSONValue] = []
                var headers = HTTPFields()
                headers[.contentType] = "text/event-stream"
                switch method {
                case "initialize":
                    headers[HTTPField.Name("Mcp-Session-Id")!] = "upstream-session-\(UUID().uuidString)"
                    messages.append([
                        "jsonrpc": "2.0", "id": id,
                        "result": ["protocolVersion": "2025-06-18", "serverInfo": ["name": "fake", "version": "1"]],
                    ])
                case "tools/call":
                    messages.append(["jsonrpc": "2.0", "method": "notifications/progress", "params": ["progress": 1]])
                    let city = message["params"]?["arguments"]?["city"]?.stringValue ?? "?"
                    messages.append([
                        "jsonrpc": "2.0", "id": id,
                        "result": ["content": [["type": "text", "text": .string("Sunny in \(city)")]]],
                    ])
                default:
                    messages.append(["jsonrpc": "2.0", "id": id, "result": ["tools": [["name": "weather"]]]])
                }
                let body = messages.map {
                    SSEEvent(event: "message", data: String(decoding: $0.compactBytes(), as: UTF8.self)).encoded
                }
                .reduce([], +)
                return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
            }
            router.get("/mcp") { _, _ in Response(status: .methodNotAllowed) }
            return Application(
                router: router,
                configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                onServerRunning: { await onListening($0.localAddress?.port ?? 0) },
                logger: testLogger
            )
        }
    }

    /// Sends one JSON-RPC message and returns status, session header and the messages received.
    static func send(
        _ port: Int,
        _ message: JSONValue
    ) async throws -> (status: Int, session: String?, messages: [JSONValue]) {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/m/mcp")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "Accept", value: "application/json, text/event-stream")
        request.headers.add(name: "X-Test-ID", value: "tests/mcp/test_tools.py::test_weather")
        request.body = .bytes(ByteBuffer(bytes: message.compactBytes()))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        var body = try await response.body.collect(upTo: 1 << 20)
        let text = body.readString(length: body.readableBytes) ?? ""
        var parser = SSEParser()
        var messages = parser.feed(Array(text.utf8)).compactMap { try? JSONValue(parsing: $0.data) }
        if messages.isEmpty, let single = try? JSONValue(parsing: text) { messages = [single] }
        return (Int(response.status.code), response.headers.first(name: "mcp-session-id"), messages)
    }

    @Test func requestsAreRecordedWithoutIDsAndReplayedWithTheClientsIDs() async throws {
        let directory = try TemporaryDirectory()
        let server = Server()
        let exchange: [JSONValue] = [
            ["jsonrpc": "2.0", "id": 1, "method": "initialize", "params": ["protocolVersion": "2025-06-18"]],
            ["jsonrpc": "2.0", "method": "notifications/initialized"],
            ["jsonrpc": "2.0", "id": 2, "method": "tools/list"],
            [
                "jsonrpc": "2.0", "id": 3, "method": "tools/call",
                "params": ["name": "weather", "arguments": ["city": "Paris"]],
            ],
        ]
        var recorded: [[JSONValue]] = []
        try await withRunning(server.application) { upstreamPort in
            try await withProxy(
                .test(mode: .record, root: directory.path, upstreamPort: upstreamPort).with {
                    $0.routes = [
                        ProxyRoute(
                            name: "m",
                            upstream: "http://127.0.0.1:\(upstreamPort)",
                            recordedBase: "http://mcp.invalid",
                            adapter: .mcp
                        )
                    ]
                }
            ) { port in
                for message in exchange {
                    let reply = try await Self.send(port, message)
                    if message["id"] == nil { #expect(reply.status == 202) }
                    if message["method"] == "initialize" {
                        #expect(reply.session?.hasPrefix("upstream-session-") == true)
                    }
                    recorded.append(reply.messages)
                }
            }
        }
        #expect(server.posts.load(ordering: .relaxed) == 4, "notifications are forwarded while recording")
        let files = directory.files()
        #expect(files.count == 3, "one recording per request; none for the notification")
        for file in files {
            let recording = try Recording(contentsOfFile: "\(directory.path)/\(file)")
            #expect(recording.kind == .http)
            #expect(recording.request["payload"]?["id"] == nil)
            #expect(RecordingVerifier.verify(path: "\(directory.path)/\(file)").isOK)
        }

        // Replay with other ids: the answers carry the client's ids; initialize issues a session.
        try await withProxy(
            .test(mode: .replay, root: directory.path, upstreamPort: nil).with {
                $0.routes = [
                    ProxyRoute(
                        name: "m",
                        upstream: "http://127.0.0.1:9",
                        recordedBase: "http://mcp.invalid",
                        adapter: .mcp
                    )
                ]
            }
        ) { port in
            for (index, message) in exchange.enumerated() {
                var renumbered = message
                if case .object(var object) = message, object["id"] != nil {
                    object["id"] = .string("client-\(index)")
                    renumbered = .object(object)
                }
                let reply = try await Self.send(port, renumbered)
                if message["id"] == nil {
                    #expect(reply.status == 202)
                    continue
                }
                #expect(reply.status == 200)
                if message["method"] == "initialize" { #expect(reply.session != nil) }
                let response = try #require(reply.messages.last)
                #expect(response["id"] == .string("client-\(index)"))
                #expect(response["result"] == recorded[index].last?["result"])
                #expect(reply.messages.count == recorded[index].count, "notifications in the stream replay too")
            }
            var get = HTTPClientRequest(url: "http://127.0.0.1:\(port)/m/mcp")
            get.method = .GET
            #expect(try await HTTPClient.shared.execute(get, timeout: .seconds(5)).status.code == 405)
        }
    }
}
