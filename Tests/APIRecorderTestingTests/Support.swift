import APIRecorder
import AsyncHTTPClient
import Foundation
import Hummingbird
import Logging
import NIOCore
import ServerTestSupport
import Synchronization

let quietLogger: Logger = {
    var logger = Logger(label: "api-recorder.testing-tests")
    logger.logLevel = .critical
    return logger
}()

/// A flag one task sets and another reads.
final class Flag: Sendable {
    private let value = Atomic<Bool>(false)
    func set() { value.store(true, ordering: .relaxed) }
    var isSet: Bool { value.load(ordering: .relaxed) }
}

/// An OpenAI-like upstream: chat completions (whole or streamed) that echo the last user
/// message, and a Tavily-like `/search`. A stream holds its last chunks until `streamGate` opens,
/// so a test can see its first chunk arrive before the upstream has sent the rest.
final class Upstream: Sendable {
    let calls = Atomic<Int>(0)
    let streamGate: AsyncGate?

    init(holdingStreams: Bool = false) {
        streamGate = holdingStreams ? AsyncGate() : nil
        streamGate?.close()
    }

    func application(onListening: @escaping @Sendable (Int) async -> Void) -> some ApplicationProtocol {
        let router = Router()
        router.post("/v1/chat/completions") { request, _ -> Response in
            self.calls.add(1, ordering: .relaxed)
            let body = try JSONValue(parsing: Array(buffer: try await request.body.collect(upTo: 1 << 20)))
            let prompt = body["messages"]?.arrayValue?.last?["content"]?.stringValue ?? ""
            let model = body["model"] ?? "m"
            if body["stream"]?.boolValue == true {
                return self.stream(prompt: prompt, model: model)
            }
            let completion: JSONValue = [
                "id": "chatcmpl-1", "object": "chat.completion", "created": 1_700_000_000, "model": model,
                "choices": [["index": 0, "finish_reason": "stop", "message": ["role": "assistant", "content": .string("echo: \(prompt)")]]],
                "usage": ["prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5],
            ]
            return Self.json(completion)
        }
        router.post("/search") { request, _ -> Response in
            self.calls.add(1, ordering: .relaxed)
            let body = try JSONValue(parsing: Array(buffer: try await request.body.collect(upTo: 1 << 20)))
            return Self.json([
                "query": body["query"] ?? "", "results": [["title": "Paris", "url": "https://example.org/paris", "score": 0.91]],
            ])
        }
        return Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { await onListening($0.localAddress?.port ?? 0) }, logger: quietLogger)
    }

    private func stream(prompt: String, model: JSONValue) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "text/event-stream"
        let gate = streamGate
        return Response(
            status: .ok, headers: headers,
            body: ResponseBody { writer in
                func chunk(_ text: String) -> ByteBuffer {
                    let data: JSONValue = [
                        "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": model,
                        "choices": [["index": 0, "delta": ["content": .string(text)], "finish_reason": nil]],
                    ]
                    return ByteBuffer(bytes: Array("data: ".utf8) + data.compactBytes() + Array("\n\n".utf8))
                }
                try await writer.write(chunk("Hel"))
                await gate?.wait()
                try await writer.write(chunk("lo"))
                try await writer.write(chunk(" \(prompt)"))
                try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
                try await writer.finish(nil)
            })
    }

    static func json(_ value: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: value.compactBytes())))
    }
}

/// A chat-completion request body.
func chatBody(_ prompt: String, stream: Bool = false) -> [UInt8] {
    let body: JSONValue = ["model": "m", "messages": [["role": "user", "content": .string(prompt)]], "stream": .bool(stream)]
    return body.compactBytes()
}

/// The content deltas of an SSE chat-completion stream.
func streamedText(_ bytes: [UInt8]) -> String {
    String(decoding: bytes, as: UTF8.self).split(separator: "\n").compactMap { line -> String? in
        guard line.hasPrefix("data: {"), let value = try? JSONValue(parsing: String(line.dropFirst(6))) else { return nil }
        return value["choices"]?.arrayValue?.first?["delta"]?["content"]?.stringValue
    }.joined()
}
