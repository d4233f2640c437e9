import APIRecorder
import AsyncHTTPClient
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1

/// Translates HTTP to and from the shared ``Recorder``: routing, test ids, bodies, upstream calls
/// and streaming. The mode logic itself lives in the recorder, the API rules in the adapters.
struct ProxyResponder: HTTPResponder {
    typealias Context = BasicRequestContext

    let configuration: ProxyConfiguration
    let recorder: Recorder
    let httpClient: HTTPClient
    let testIdentity: TestIdentity
    let logger: Logger
    /// Request headers that carry an API key by themselves (Gemini, Anthropic, Azure OpenAI).
    private static let keyHeaders = ["x-goog-api-key", "x-api-key", "api-key"]
    /// Upstream response headers passed to the client besides the content type.
    private static let passedResponseHeaders = ["mcp-session-id"]

    /// The adapter for a request on `route` (the route's, or by path for `auto`).
    private func adapter(for route: ProxyRoute, path: String) -> any ProviderAdapter {
        switch route.adapter {
        case .openai: return AdapterSelection.openAI
        case .http: return AdapterSelection.plainHTTP
        case .ollama: return AdapterSelection.ollama
        case .mcp: return AdapterSelection.mcp
        case .gemini: return AdapterSelection.gemini
        case .auto: return AdapterSelection.automatic(forPath: path)
        }
    }

    func respond(to request: Request, context: Context) async throws -> Response {
        let path = request.uri.path
        if path.hasPrefix("/__recorder/") { return try await control(request, path: path) }
        let components = path.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: true)
        guard let name = components.first, let route = configuration.route(named: name) else {
            let known = configuration.routes.map { "/\($0.name)" }.joined(separator: ", ")
            return errorResponse(
                ExchangeError(
                    status: 404, type: "route_not_found",
                    message: "No route for \(path). Routes: \(known.isEmpty ? "none (start with --upstream NAME=URL)" : known)."))
        }
        let rest = components.count > 1 ? "/" + components[1] : ""

        let body: [UInt8]
        do {
            var buffer = try await request.body.collect(upTo: configuration.maxBodyBytes)
            body = buffer.readBytes(length: buffer.readableBytes) ?? []
        } catch is NIOTooManyBytesError {
            return errorResponse(
                ExchangeError(
                    status: 413, type: "request_too_large",
                    message: "The request body is larger than --max-body (\(configuration.maxBodyBytes) bytes)."))
        }

        let exchangeRequest = ExchangeRequest(
            method: request.method.rawValue, path: rest, query: request.uri.query, recordedBase: route.recordedBase,
            headers: request.headers.map { ($0.name.canonicalName, $0.value) }, body: body,
            testID: testIdentity.testID(for: request.headers),
            upstreamKey: route.keyEnvironmentVariable.flatMap { configuration.environment[$0] })
        let adapter = adapter(for: route, path: rest)
        let exchange: PreparedExchange
        let decision: RecorderDecision
        do {
            exchange = try adapter.prepare(exchangeRequest)
            decision = try await recorder.decide(exchange.recorderRequest)
        } catch let error as ExchangeError {
            return errorResponse(error, adapter: adapter)
        } catch let error as RecorderError {
            logger.warning("\(request.method) \(path): \(error.message)")
            return errorResponse(ExchangeError(error), adapter: adapter)
        }

        switch decision {
        case .answerLocally:
            return replayResponse(adapter.localAnswer(for: exchange))
        case .replay(let hit):
            logger.info("replay \(request.method) \(path) -> \(hit.path)")
            return replayResponse(adapter.replayPlan(for: hit.recording, exchange: exchange))
        case .forward(let record, let flight):
            logger.info("\(record ? "record" : "live") \(request.method) \(path) -> \(route.upstream)\(rest)")
            return await forward(exchange, adapter: adapter, route: route, record: record, flight: flight)
        }
    }

    // MARK: Replay

    private func replayResponse(_ plan: ReplayPlan) -> Response {
        var headers = HTTPFields()
        if !plan.contentType.isEmpty { headers[.contentType] = plan.contentType }
        for (name, value) in plan.headers {
            if let field = HTTPField.Name(name) { headers[field] = value }
        }
        switch plan.body {
        case .whole(let bytes):
            return Response(
                status: .init(code: plan.status), headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
        case .stream(let frames, let gaps, let failsAtEnd):
            headers[.cacheControl] = "no-cache"
            let pace = configuration.pace
            return Response(
                status: .init(code: plan.status), headers: headers,
                body: ResponseBody { writer in
                    if pace == .recorded, let gaps {
                        for (index, frame) in frames.enumerated() {
                            if index < gaps.count, gaps[index] > 0 { try await Task.sleep(for: .milliseconds(gaps[index])) }
                            try await writer.write(ByteBuffer(bytes: frame))
                        }
                    } else {
                        // Unpaced: the same events, in as few writes as possible.
                        var batch = ByteBuffer()
                        for frame in frames {
                            batch.writeBytes(frame)
                            if batch.readableBytes >= 64 * 1024 {
                                try await writer.write(batch)
                                batch = ByteBuffer()
                            }
                        }
                        if batch.readableBytes > 0 { try await writer.write(batch) }
                    }
                    // A recorded mid-stream failure fails the same way: the connection is cut.
                    if failsAtEnd { throw ReplayedStreamFailure() }
                    try await writer.finish(nil)
                })
        }
    }

    // MARK: Forwarding

    private func forward(
        _ exchange: PreparedExchange, adapter: any ProviderAdapter, route: ProxyRoute, record: Bool, flight: FlightLease?
    ) async -> Response {
        var upstreamRequest = HTTPClientRequest(url: upstreamURL(exchange.request, route: route))
        upstreamRequest.method = HTTPMethod(rawValue: exchange.request.method)
        upstreamRequest.headers = upstreamHeaders(exchange.request, route: route)
        if !exchange.upstreamBody.isEmpty { upstreamRequest.body = .bytes(ByteBuffer(bytes: exchange.upstreamBody)) }

        let response: HTTPClientResponse
        do {
            response = try await httpClient.execute(
                upstreamRequest, timeout: .nanoseconds(Int64(configuration.upstreamTimeout.components.seconds) * 1_000_000_000),
                logger: logger)
        } catch {
            await flight?.end()
            recorder.notePassedThrough()
            return errorResponse(upstreamFailure(error, route: route), adapter: adapter)
        }

        let status = Int(response.status.code)
        let contentType = response.headers.first(name: "content-type")
        var headers = HTTPFields()
        if let contentType { headers[.contentType] = contentType }
        if contentType?.lowercased().hasPrefix("text/event-stream") == true { headers[.cacheControl] = "no-cache" }
        // Session headers the client needs to go on (MCP's streamable HTTP).
        for name in Self.passedResponseHeaders {
            if let value = response.headers.first(name: name), let field = HTTPField.Name(name) { headers[field] = value }
        }
        let upstreamBody = response.body

        guard record else {
            // Live: pass the bytes through untouched.
            recorder.notePassedThrough()
            return Response(
                status: .init(code: status), headers: headers,
                body: ResponseBody { writer in
                    defer { Task { await flight?.end() } }
                    for try await buffer in upstreamBody { try await writer.write(buffer) }
                    try await writer.finish(nil)
                })
        }

        let transcoder = adapter.transcoder(for: exchange, status: status, contentType: contentType)
        let recorder = self.recorder
        return Response(
            status: .init(code: status), headers: headers,
            body: ResponseBody { writer in
                // Tee: every complete event goes to the client as soon as it arrives.
                try await LiveTee.run(
                    upstreamBody, bytes: { Array(buffer: $0) }, transcoder: transcoder, exchange: exchange, adapter: adapter,
                    recorder: recorder, flight: flight
                ) { bytes in
                    try await writer.write(ByteBuffer(bytes: bytes))
                }
                try await writer.finish(nil)
            })
    }

    private func upstreamURL(_ request: ExchangeRequest, route: ProxyRoute) -> String {
        var url = route.upstream + request.path
        guard var query = request.query, !query.isEmpty else { return url }
        if let key = request.upstreamKey {
            // A key in the query (Gemini's `key=`) is replaced by the route's own.
            query = query.split(separator: "&", omittingEmptySubsequences: false).map { pair in
                pair.hasPrefix("key=") ? "key=" + Self.percentEncoded(key) : String(pair)
            }.joined(separator: "&")
        }
        url += "?" + query
        return url
    }

    /// `value` with every byte outside RFC 3986's unreserved set percent-encoded.
    private static func percentEncoded(_ value: String) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var bytes: [UInt8] = []
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                bytes.append(byte)
            default:
                bytes += [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 0x0F)]]
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The client's headers minus hop-by-hop ones and the proxy's own, plus the route's key.
    private func upstreamHeaders(_ request: ExchangeRequest, route: ProxyRoute) -> HTTPHeaders {
        var headers = HTTPHeaders(request.upstreamHeaders)
        if let variable = route.keyEnvironmentVariable, let key = configuration.environment[variable] {
            // The key goes wherever the client put its own (APIs that take a key header ignore
            // Bearer), and as Bearer when the client sent none.
            let keyHeaders = Self.keyHeaders.filter { headers.contains(name: $0) }
            for name in keyHeaders { headers.replaceOrAdd(name: name, value: key) }
            if keyHeaders.isEmpty || headers.contains(name: "authorization") {
                headers.replaceOrAdd(name: "Authorization", value: "Bearer \(key)")
            }
        }
        return headers
    }

    private func upstreamFailure(_ error: any Error, route: ProxyRoute) -> ExchangeError {
        let timedOut: Bool
        if let clientError = error as? HTTPClientError {
            timedOut = [.deadlineExceeded, .connectTimeout, .readTimeout, .writeTimeout].contains(clientError)
        } else {
            timedOut = false
        }
        if timedOut {
            return ExchangeError(
                status: 504, type: "upstream_timeout",
                message: "The upstream \(route.name) (\(route.upstream)) did not answer in time: \(error).")
        }
        return ExchangeError(
            status: 502, type: "upstream_unreachable",
            message: "The upstream \(route.name) (\(route.upstream)) could not be reached: \(error).")
    }

    // MARK: Errors and control

    /// An error in the provider's own shape (OpenAI's when no route was chosen).
    private func errorResponse(_ error: ExchangeError, adapter: any ProviderAdapter = AdapterSelection.openAI) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(
            status: .init(code: error.status), headers: headers,
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: adapter.errorBody(error))))
    }

    /// `POST /__recorder/test` sets the current test id; `GET /__recorder/report` reports the session.
    private func control(_ request: Request, path: String) async throws -> Response {
        switch (request.method, path) {
        case (.post, "/__recorder/test"):
            var buffer = try await request.body.collect(upTo: 1 << 20)
            let bytes = buffer.readBytes(length: buffer.readableBytes) ?? []
            guard let value = try? JSONValue(parsing: bytes), case .object = value else {
                return errorResponse(
                    ExchangeError(status: 400, type: "invalid_request_error", message: #"Send {"test_id": "..."} or {"test_id": null}."#))
            }
            let testID = value["test_id"]?.stringValue
            if let testID {
                do {
                    _ = try RecordingLayout.relativeDirectory(forTestID: testID)
                } catch {
                    return errorResponse(ExchangeError(status: 400, type: "invalid_test_id", message: error.message))
                }
            }
            testIdentity.setCurrent(testID)
            logger.info("current test id: \(testID ?? "none")")
            return jsonResponse(["test_id": testID.map(JSONValue.string) ?? .null])
        case (.get, "/__recorder/report"):
            let report = recorder.report()
            return jsonResponse([
                "mode": .string(report.mode.rawValue), "replayed": .integer(report.hits), "missed": .integer(report.misses),
                "recorded": .integer(report.recorded), "passed_through": .integer(report.passedThrough),
                "unused": .array(report.unused.map(JSONValue.string)),
            ])
        default:
            return errorResponse(
                ExchangeError(
                    status: 404, type: "not_found",
                    message: "Unknown control endpoint \(request.method) \(path); use POST /__recorder/test or GET /__recorder/report."))
        }
    }

    private func jsonResponse(_ value: JSONValue) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: value.compactBytes())))
    }
}

/// Thrown to cut a replayed stream where the recorded one failed.
struct ReplayedStreamFailure: Error {}
