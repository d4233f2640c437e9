/// Re-sends recorded requests to the live upstream and compares the *shape* of each answer with
/// the recording's (``ResponseShape``): what `api-recorder drift` runs. Nothing is written.
package struct DriftCheck: Sendable {
    /// Where the requests of recordings naming `recordedBase` go, and with which key headers.
    package struct Route: Sendable {
        package var name: String
        package var recordedBase: String
        package var upstream: String
        /// Headers every request of the route carries (its key, in the provider's header).
        package var headers: [(name: String, value: String)]

        package init(name: String, recordedBase: String, upstream: String, headers: [(name: String, value: String)]) {
            self.name = name
            self.recordedBase = recordedBase
            self.upstream = upstream
            self.headers = headers
        }
    }

    /// What became of one recording.
    package enum Verdict: Sendable {
        case same
        case drifted(ShapeDrift)
        case failed(String)
        /// Not an HTTP exchange (a tool invocation): nothing to re-send.
        case skipped(String)
    }

    package var routes: [Route]
    package var transport: any UpstreamTransport
    package var timeout: Duration

    package init(routes: [Route], transport: any UpstreamTransport, timeout: Duration) {
        self.routes = routes
        self.transport = transport
        self.timeout = timeout
    }

    /// Re-sends `recording`'s request and compares the answers' shapes.
    package func check(_ recording: Recording) async -> Verdict {
        let recorded: ResponseShape
        let request: UpstreamRequest
        switch prepare(recording) {
        case .success(let prepared): (recorded, request) = prepared
        case .failure(let reason): return reason.skipped ? .skipped(reason.text) : .failed(reason.text)
        }
        let live: ResponseShape
        do {
            live = try await send(request)
        } catch {
            // Once more: a kept-alive connection the server had closed fails before it is used.
            do {
                live = try await send(request)
            } catch {
                return .failed("the upstream did not answer: \(error)")
            }
        }
        let drift = live.drift(from: recorded)
        return drift.isEmpty ? .same : .drifted(drift)
    }

    private func send(_ request: UpstreamRequest) async throws -> ResponseShape {
        let response = try await transport.send(request, timeout: timeout)
        var bytes: [UInt8] = []
        for try await chunk in response.body { bytes += chunk }
        return Self.shape(status: response.status, contentType: response.header("content-type"), bytes: bytes)
    }

    private struct Refusal: Error {
        var text: String
        var skipped = false
    }

    /// The recording's shape and the request to send again.
    private func prepare(_ recording: Recording) -> Result<(ResponseShape, UpstreamRequest), Refusal> {
        let kind = recording.kind
        guard kind != .toolInvocation else {
            return .failure(Refusal(text: "a tool invocation, not an HTTP exchange", skipped: true))
        }
        guard let url = recording.url, let method = recording.method else {
            return .failure(Refusal(text: "the recording names no URL or method"))
        }
        if kind == .inference, url.contains(":generateContent") || url.contains(":streamGenerateContent") {
            return .failure(Refusal(text: "Gemini inference recordings hold the SDK's request, not the wire's"))
        }
        let matching = routes.filter { url.hasPrefix($0.recordedBase) }.max {
            $0.recordedBase.count < $1.recordedBase.count
        }
        guard let route = matching else {
            return .failure(
                Refusal(
                    text: "no route for \(url) (give --upstream NAME=URL, and --recorded-base NAME=BASE or --provider)"
                )
            )
        }
        let body: JSONValue? = kind == .inference ? recording.request["body"] : recording.request["payload"]
        var headers = route.headers
        headers.append(
            ("Accept", recording.isStreaming ? "text/event-stream, application/x-ndjson" : "application/json")
        )
        if url.contains("/v1/messages") { headers.append(("anthropic-version", "2023-06-01")) }
        var bytes: [UInt8] = []
        if let body, body != .null {
            headers.append(("Content-Type", "application/json"))
            bytes = body.compactBytes()
        }
        let request = UpstreamRequest(
            method: method.uppercased(),
            url: route.upstream + url.dropFirst(route.recordedBase.count),
            headers: headers,
            body: bytes
        )
        return .success((Self.recordedShape(recording), request))
    }

    /// The shape the recording holds: what a replay would send.
    static func recordedShape(_ recording: Recording) -> ResponseShape {
        if let exception = recording.exception {
            return ResponseShape(status: exception.statusCode ?? 500, body: exception.body ?? .null)
        }
        let status = recording.status ?? 200
        guard recording.isStreaming, let chunks = recording.chunks else {
            return ResponseShape(status: status, body: ResponseNormalization.untyped(recording.body))
        }
        if recording.kind == .http {
            // Plain-HTTP streams are the raw SSE lines.
            return ResponseShape(
                status: status,
                events: ResponseShape.serverSentEvents(lines: chunks.compactMap(\.stringValue))
            )
        }
        return ResponseShape(status: status, events: chunks.map(ResponseNormalization.untyped))
    }

    /// The shape of a live answer, by its content type.
    static func shape(status: Int, contentType: String?, bytes: [UInt8]) -> ResponseShape {
        let type = contentType?.lowercased() ?? ""
        let text = String(decoding: bytes, as: UTF8.self)
        if type.hasPrefix("text/event-stream") {
            return ResponseShape(
                status: status,
                events: ResponseShape.serverSentEvents(
                    lines: text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
                )
            )
        }
        if type.hasPrefix("application/x-ndjson") {
            return ResponseShape(status: status, events: ResponseShape.lines(text))
        }
        return ResponseShape(status: status, body: (try? JSONValue(parsing: bytes)) ?? .string(text))
    }
}
