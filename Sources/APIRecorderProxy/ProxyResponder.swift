import APIRecorder
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Prometheus

/// The proxy's front end: routing, test ids, request bodies, key injection, the control
/// endpoints, and the conversion between Hummingbird's types and the shared ``ExchangePipeline``,
/// which does everything else.
struct ProxyResponder: HTTPResponder {
    typealias Context = BasicRequestContext

    let configuration: ProxyConfiguration
    let pipeline: ExchangePipeline
    let transport: any UpstreamTransport
    let testIdentity: TestIdentity
    /// Tool calls from clients (`/__recorder/tools/...`).
    let tools: ToolEndpoint
    /// The pipeline's metrics, for `GET /__recorder/metrics`.
    let metrics: PrometheusCollectorRegistry
    let logger: Logger
    /// Who may drive the proxy (loopback callers, and the hosts and origins allowed).
    let policy: CallerPolicy
    /// Request headers that carry an API key by themselves (Gemini, Anthropic, Azure OpenAI).
    private static let keyHeaders = ["x-goog-api-key", "x-api-key", "api-key"]

    private var recorder: Recorder { pipeline.recorder }

    func respond(to request: Request, context: Context) async throws -> Response {
        let path = request.uri.path
        let isControl = path.hasPrefix("/__recorder/")
        // Routing reads only the path; the caller policy decides before anything else is read.
        let (name, rest) = Self.routeName(of: path)
        let route = isControl || name.isEmpty ? nil : configuration.route(named: name)
        let adapter =
            route.map { AdapterSelection.select($0.adapter, forPath: rest) } ?? .openAI(AdapterSelection.openAI)
        let origin: String?
        switch policy.verdict(
            method: request.method.rawValue,
            host: request.head.authority,
            origin: request.headers[.origin]
        ) {
        case .refuse(let error):
            logger.warning(
                "request refused",
                metadata: [
                    "status": "\(error.status)", "type": "\(error.type)",
                    "method": "\(request.method.rawValue.prefix(32))",
                    "host": "\(request.head.authority?.prefix(200) ?? "none")",
                    "origin": "\(request.headers[.origin]?.prefix(200) ?? "none")",
                ]
            )
            var response = errorResponse(error, adapter: adapter)
            if error.status == 405 { response.headers[.allow] = CallerPolicy.allowedMethods }
            // After a CONNECT the decoder expects a tunnel: nothing more on the connection is HTTP.
            if request.method == .connect { response.headers[.connection] = "close" }
            return response
        case .preflight(let preflightOrigin):
            return preflightResponse(request, origin: preflightOrigin)
        case .serve(let allowedOrigin):
            origin = allowedOrigin
        }
        var response: Response
        if isControl {
            response = try await control(request, path: path)
        } else if let route {
            response = await forward(request, route: route, rest: rest, adapter: adapter)
        } else {
            response = routeNotFound(path)
        }
        if let origin { response.headers.append(contentsOf: CallerPolicy.corsHeaders(origin: origin)) }
        return response
    }

    /// A CORS preflight (or a plain `OPTIONS`), answered here: never forwarded, never recorded.
    private func preflightResponse(_ request: Request, origin: String?) -> Response {
        let privateNetwork = HTTPField.Name("Access-Control-Request-Private-Network").flatMap { request.headers[$0] }
        let headers = CallerPolicy.preflightHeaders(
            origin: origin,
            requestedHeaders: request.headers[.accessControlRequestHeaders],
            privateNetwork: privateNetwork?.lowercased() == "true"
        )
        return Response(status: .noContent, headers: headers)
    }

    /// The 404 of a path that names no route.
    private func routeNotFound(_ path: String) -> Response {
        let known = configuration.routes.map { "/\($0.name)" }.joined(separator: ", ")
        return errorResponse(
            ExchangeError(
                status: 404,
                type: "route_not_found",
                message:
                    "No route for \(path). Routes: \(known.isEmpty ? "none (start with --upstream NAME=URL)" : known)."
            )
        )
    }

    /// A request to `route`, answered by the pipeline.
    private func forward(
        _ request: Request,
        route: ProxyRoute,
        rest: String,
        adapter: SelectedAdapter
    ) async -> Response {
        let body: [UInt8]
        do {
            body = try await collectBody(request)
        } catch {
            return errorResponse(error, adapter: adapter)
        }

        let upstreamKey = route.keyEnvironmentVariable.flatMap { configuration.environment[$0] }
        let exchangeRequest = ExchangeRequest(
            method: request.method.rawValue,
            path: rest,
            query: request.uri.query,
            recordedBase: route.recordedBase,
            headers: Self.upstreamHeaders(request.headers, key: upstreamKey),
            body: body,
            testID: testIdentity.testID(for: request.headers),
            upstreamKey: upstreamKey
        )
        let upstream = Upstream(name: route.name, baseURL: route.upstream, transport: transport)
        return Self.response(await pipeline.respond(to: exchangeRequest, adapter: adapter, upstream: upstream))
    }

    /// The first segment of `path` (the route's name) and what follows it: `/openai/chat/x` is
    /// `openai` and `/chat/x`. Leading slashes are skipped; nothing after the name is `""`.
    static func routeName(of path: String) -> (name: Substring, rest: String) {
        // On UTF-8 bytes: `/` is ASCII, and characters would cost grapheme breaking per request.
        let utf8 = path.utf8
        let start = utf8.firstIndex { $0 != UInt8(ascii: "/") } ?? utf8.endIndex
        guard let slash = utf8[start...].firstIndex(of: UInt8(ascii: "/")) else {
            return (path[start...], "")
        }
        let after = path[utf8.index(after: slash)...]
        return (path[start..<slash], after.isEmpty ? "" : "/" + after)
    }

    /// The request's body, or a 413 `ExchangeError` when it is larger than `--max-body` (400 when
    /// it cannot be read: the client stopped sending it midway, or its framing is broken).
    private func collectBody(_ request: Request) async throws(ExchangeError) -> [UInt8] {
        do {
            // A body cut short throws (HTTPPartGuard passes the decoder's error on), never ends early.
            var buffer = try await request.body.collect(upTo: configuration.maxBodyBytes)
            return buffer.readBytes(length: buffer.readableBytes) ?? []
        } catch is NIOTooManyBytesError {
            throw ExchangeError(
                status: 413,
                type: "request_too_large",
                message: "The request body is larger than --max-body (\(configuration.maxBodyBytes) bytes)."
            )
        } catch {
            throw ExchangeError(
                status: 400,
                type: "invalid_request_error",
                message: "The request body could not be read: it ended before its length, or is not valid HTTP."
            )
        }
    }

    /// The request's body as JSON, or a 400 `invalid_json` (413 when too large) `ExchangeError`.
    private func collectJSON(_ request: Request) async throws(ExchangeError) -> JSONValue {
        let bytes = try await collectBody(request)
        do {
            return try JSONValue(parsing: bytes)
        } catch {
            throw ExchangeError(status: 400, type: "invalid_json", message: "The body is not valid JSON: \(error).")
        }
    }

    /// The client's headers with the route's key in place of the client's, wherever the client put
    /// its own (APIs that take a key header ignore Bearer), and as Bearer when it sent none.
    private static func upstreamHeaders(_ fields: HTTPFields, key: String?) -> [(name: String, value: String)] {
        var headers = fields.map { (name: $0.name.canonicalName, value: $0.value) }
        guard let key else { return headers }
        let sentKeyHeaders = keyHeaders.filter { name in headers.contains { $0.name.lowercased() == name } }
        let sentAuthorization = headers.contains { $0.name.lowercased() == "authorization" }
        headers.removeAll { header in
            let name = header.name.lowercased()
            return name == "authorization" || keyHeaders.contains(name)
        }
        for name in sentKeyHeaders { headers.append((name, key)) }
        if sentKeyHeaders.isEmpty || sentAuthorization { headers.append(("Authorization", "Bearer \(key)")) }
        return headers
    }

    // MARK: Hummingbird conversion

    /// A pipeline response as Hummingbird's: known bytes in one buffer, anything else streamed.
    static func response(_ exchange: ExchangeResponse) -> Response {
        var headers = HTTPFields()
        for (name, value) in exchange.headers {
            // The pipeline's own names need no parsing.
            let field: HTTPField.Name?
            switch name {
            case "Content-Type": field = .contentType
            case "Cache-Control": field = .cacheControl
            default: field = HTTPField.Name(name)
            }
            if let field { headers.append(HTTPField(name: field, value: value)) }
        }
        let status = HTTPResponse.Status(code: exchange.status)
        if let bytes = exchange.body.completeBytes {
            return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
        }
        let body = exchange.body
        return Response(
            status: status,
            headers: headers,
            body: ResponseBody { writer in
                // A body that throws (a recorded or live stream cut midway) closes the connection
                // without the final chunk, so the client sees the cut.
                try await body.write { bytes in try await writer.write(ByteBuffer(bytes: bytes)) }
                try await writer.finish(nil)
            }
        )
    }

    /// An error in the provider's own shape (OpenAI's when no route was chosen).
    private func errorResponse(
        _ error: ExchangeError,
        adapter: SelectedAdapter = .openAI(AdapterSelection.openAI)
    ) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(
            status: .init(code: error.status),
            headers: headers,
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: adapter.errorBody(error)))
        )
    }

    // MARK: Control

    /// The control endpoints, under `/__recorder/`:
    /// - `POST /__recorder/test` sets (or with `null` clears) the current test id, and starts its
    ///   counts afresh;
    /// - `GET /__recorder/report` reports the session, `?test_id=ID` one test (what the pytest
    ///   plugin reads after each test);
    /// - `GET /__recorder/environment` gives the variables that point unmodified clients at this
    ///   proxy (``ClientEnvironment``), as reached through the request's `Host`;
    /// - `POST /__recorder/tools/invoke` and `POST /__recorder/tools/result` record and replay
    ///   tool calls (``ToolEndpoint``);
    /// - `POST /__recorder/faults` sets the faults of a test id, `GET` lists what is left of
    ///   them, `DELETE` clears them (`?test_id=ID`: one test's);
    /// - `GET /__recorder/journal` lists the last exchanges (`?test_id=ID`: one test's);
    /// - `GET /__recorder/metrics` answers the metrics in Prometheus' text format.
    private func control(_ request: Request, path: String) async throws -> Response {
        let parameters = request.uri.queryParameters
        /// `?test_id=ID` (empty: requests with no test id), or nothing.
        let queriedTestID: String?? = parameters["test_id"].map { $0.isEmpty ? nil : String($0) }
        switch (request.method, path) {
        case (.post, "/__recorder/faults"):
            let json: JSONValue
            do {
                json = try await collectJSON(request)
            } catch {
                return errorResponse(error)
            }
            guard case .object(let object) = json, let list = object["faults"]?.arrayValue else {
                return errorResponse(
                    ExchangeError(
                        status: 400,
                        type: "invalid_request_error",
                        message: #"Send {"test_id": "...", "faults": [{"status": 429, "times": 2}, ...]}."#
                    )
                )
            }
            let testID: String? =
                object.index(of: "test_id") != nil
                ? object["test_id"]?.stringValue : testIdentity.testID(for: request.headers)
            var faults: [Fault] = []
            for (index, item) in list.enumerated() {
                do {
                    faults.append(try Fault(json: item))
                } catch {
                    return errorResponse(
                        ExchangeError(status: 400, type: "invalid_fault", message: "faults[\(index)]: \(error)")
                    )
                }
            }
            recorder.faults.set(faults, for: testID)
            logger.debug("faults set", metadata: ["test_id": "\(testID ?? "none")", "faults": "\(faults)"])
            return jsonResponse(faultsJSON(for: testID))
        case (.get, "/__recorder/faults"):
            return jsonResponse(faultsJSON(for: queriedTestID ?? testIdentity.currentTestID))
        case (.delete, "/__recorder/faults"):
            recorder.faults.clear(testID: queriedTestID)
            return jsonResponse(["cleared": true])
        case (.get, "/__recorder/journal"):
            return jsonResponse(recorder.journal.json(testID: queriedTestID))
        case (.get, "/__recorder/metrics"):
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            return Response(
                status: .ok,
                headers: headers,
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: metrics.emitToBuffer()))
            )
        case (.post, "/__recorder/tools/invoke"), (.post, "/__recorder/tools/result"):
            let json: JSONValue
            do {
                json = try await collectJSON(request)
            } catch {
                return errorResponse(error)
            }
            let reply: (status: Int, body: JSONValue)
            if path.hasSuffix("/invoke") {
                do throws(ExchangeError) {
                    let invocation = try ToolEndpoint.Invocation(
                        json: json,
                        defaultTestID: testIdentity.testID(for: request.headers)
                    )
                    if let testID = invocation.testID {
                        do {
                            _ = try recorder.store.directory(forTestID: testID)
                        } catch {
                            throw ExchangeError(status: 400, type: "invalid_test_id", message: error.message)
                        }
                    }
                    reply = await tools.invoke(invocation, pipeline: pipeline)
                } catch {
                    reply = ToolEndpoint.failure(error)
                }
            } else {
                reply = await tools.report(json)
            }
            return jsonResponse(reply.body, status: .init(code: reply.status))
        case (.post, "/__recorder/test"):
            let value: JSONValue
            do {
                value = try await collectJSON(request)
            } catch {
                return errorResponse(error)
            }
            guard case .object = value, value["test_id"].map({ $0 == .null || $0.stringValue != nil }) ?? true else {
                return errorResponse(
                    ExchangeError(
                        status: 400,
                        type: "invalid_request_error",
                        message: #"Send {"test_id": "..."} or {"test_id": null}."#
                    )
                )
            }
            let testID = value["test_id"]?.stringValue
            if let testID {
                do {
                    _ = try recorder.store.directory(forTestID: testID)
                } catch {
                    return errorResponse(ExchangeError(status: 400, type: "invalid_test_id", message: error.message))
                }
                recorder.beginTest(testID)
            }
            testIdentity.setCurrent(testID)
            logger.debug("current test id", metadata: ["test_id": "\(testID ?? "none")"])
            return jsonResponse(["test_id": testID.map(JSONValue.string) ?? .null])
        case (.get, "/__recorder/report"):
            if let testID = parameters["test_id"] {
                return jsonResponse(recorder.report(forTestID: testID.isEmpty ? nil : String(testID)).json)
            }
            return jsonResponse(recorder.report().json)
        case (.get, "/__recorder/environment"):
            let host = request.head.authority ?? "\(configuration.host):\(configuration.port)"
            return jsonResponse(ClientEnvironment(proxyURL: "http://\(host)", configuration: configuration).json)
        default:
            return errorResponse(
                ExchangeError(
                    status: 404,
                    type: "not_found",
                    message:
                        "Unknown control endpoint \(request.method) \(path); use POST /__recorder/test, "
                        + "GET /__recorder/report, GET /__recorder/environment, GET /__recorder/journal, "
                        + "GET /__recorder/metrics, POST|GET|DELETE /__recorder/faults, POST /__recorder/tools/invoke "
                        + "or POST /__recorder/tools/result."
                )
            )
        }
    }

    private func faultsJSON(for testID: String?) -> JSONValue {
        [
            "test_id": testID.map(JSONValue.string) ?? .null,
            "faults": .array(recorder.faults.faults(for: testID).map(\.json)),
        ]
    }

    private func jsonResponse(_ value: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(
            status: status,
            headers: headers,
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: value.compactBytes()))
        )
    }
}
