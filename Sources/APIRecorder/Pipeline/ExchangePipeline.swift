package import Logging

/// How replayed streams are timed.
public enum ReplayPace: String, Sendable, CaseIterable {
    /// As fast as possible.
    case none
    /// With the gaps recorded between chunks (`chunk_offsets_ms`).
    case recorded
}

/// The one path every exchange takes after a front end has routed it, whatever the front end
/// (the proxy, URLSession, AsyncHTTPClient, OpenAPI clients, tool calls):
///
///     adapter.prepare → recorder.decide → replay | answer locally | forward → tee → record
///
/// It owns what would otherwise be written once per front end and drift: the flight lease (ended
/// on every path), the session counts, the mapping of upstream failures to the provider's error
/// shape, the response-header policy, replay pacing, and the rule that record mode shows the
/// client exactly what a replay of its recording will show. Front ends translate their own types
/// and nothing else.
package struct ExchangePipeline: Sendable {
    package let recorder: Recorder
    package var pace: ReplayPace
    /// How long an upstream may take to send its response head, counted from when it is sent.
    package var upstreamTimeout: Duration
    let logger: Logger

    package init(
        recorder: Recorder,
        pace: ReplayPace = .none,
        upstreamTimeout: Duration = .seconds(300),
        logger: Logger? = nil
    ) {
        self.recorder = recorder
        self.pace = pace
        self.upstreamTimeout = upstreamTimeout
        self.logger = logger ?? recorder.logger
    }

    /// Answers one HTTP exchange. Never throws: every failure is an error response in the
    /// adapter's shape.
    /// - Parameter upstream: where the request goes when it is forwarded (record and live modes).
    package func respond<Adapter: ProviderAdapter>(
        to request: ExchangeRequest,
        adapter: Adapter,
        upstream: Upstream
    ) async -> ExchangeResponse {
        var exchange: PreparedExchange<Adapter.Details>
        do {
            exchange = try adapter.prepare(request)
            exchange.issuedIDs = recorder.issuedIDs
        } catch {
            recorder.note(.failed(storeFailure: nil), testID: request.testID)
            log(.warning, "bad request", request: request, metadata: ["reason": "\(error.message)"])
            return errorResponse(error, adapter: adapter)
        }
        let decision: RecorderDecision
        do {
            decision = try await recorder.decide(exchange.recorderRequest)
        } catch {
            if error.code == .recordingNotFound {
                recorder.note(
                    .missed(MissedRequest(exchange.recorderRequest, diagnosis: error.diagnosis)),
                    for: exchange
                )
                log(.warning, "recording not found", exchange: exchange, metadata: ["reason": "\(error.message)"])
            } else {
                recorder.note(.failed(storeFailure: nil), for: exchange)
                log(.error, "refused", exchange: exchange, metadata: ["reason": "\(error.message)"])
            }
            return errorResponse(ExchangeError(error), adapter: adapter, refusal: error)
        }

        switch decision {
        case .answerLocally:
            recorder.note(.answeredLocally, for: exchange)
            return render(adapter.localAnswer(for: exchange))
        case .replay(let hit):
            let plan: ReplayPlan
            do {
                plan = try adapter.replayPlan(for: hit.recording, exchange: exchange)
            } catch {
                let refusal = RecorderError(
                    code: .corruptRecording,
                    message: "\(hit.path): corrupt recording: \(error.reason)"
                )
                recorder.note(.failed(storeFailure: nil), for: exchange)
                log(.error, "corrupt recording", exchange: exchange, metadata: ["reason": "\(refusal.message)"])
                return errorResponse(ExchangeError(refusal), adapter: adapter, refusal: refusal)
            }
            recorder.note(.replayed(paths: hit.paths), for: exchange)
            log(.info, "replayed", exchange: exchange, metadata: ["path": "\(hit.path)"])
            return render(plan)
        case .shareFailure(let failure):
            recorder.note(.failed(storeFailure: nil), for: exchange)
            let error =
                failure as? ExchangeError
                ?? ExchangeError(status: 502, type: "upstream_unreachable", message: "\(failure)")
            log(.warning, "an identical request failed", exchange: exchange, metadata: ["reason": "\(error.message)"])
            return errorResponse(error, adapter: adapter)
        case .passThrough:
            return await passThrough(exchange, adapter: adapter, upstream: upstream)
        case .record(let lease):
            return await record(exchange, adapter: adapter, upstream: upstream, lease: lease)
        }
    }

    // MARK: Replay

    /// The response for a replay plan: its frames paced as asked, or sent in as few writes as possible.
    func render(_ plan: ReplayPlan, headers extra: [(name: String, value: String)]? = nil) -> ExchangeResponse {
        switch plan.body {
        case .whole(let bytes):
            var headers = ResponseHeaderPolicy.headers(contentType: plan.contentType, isStream: false)
            headers += extra ?? plan.headers
            return ExchangeResponse(status: plan.status, headers: headers, body: .bytes(bytes))
        case .stream(let frames, let gaps, let failsAtEnd):
            var headers = ResponseHeaderPolicy.headers(contentType: plan.contentType, isStream: true)
            headers += extra ?? plan.headers
            let paced = pace == .recorded ? gaps : nil
            let body = ExchangeBody.writer { emit in
                if let paced {
                    for (index, frame) in frames.enumerated() {
                        if index < paced.count, paced[index] > 0 {
                            try await Task.sleep(for: .milliseconds(paced[index]))
                        }
                        try await emit(frame)
                    }
                } else {
                    var batch: [UInt8] = []
                    for frame in frames {
                        batch += frame
                        if batch.count >= 64 * 1024 {
                            try await emit(batch)
                            batch.removeAll(keepingCapacity: true)
                        }
                    }
                    if !batch.isEmpty { try await emit(batch) }
                }
                // A recorded mid-stream failure fails the same way: the response is cut.
                if failsAtEnd { throw RecordedStreamFailure() }
            }
            return ExchangeResponse(status: plan.status, headers: headers, body: body)
        }
    }

    /// An error in the adapter's shape.
    func errorResponse(
        _ error: ExchangeError,
        adapter: some ProviderAdapter,
        refusal: RecorderError? = nil
    ) -> ExchangeResponse {
        ExchangeResponse(
            status: error.status,
            headers: ResponseHeaderPolicy.headers(contentType: "application/json", isStream: false),
            body: .bytes(adapter.errorBody(error)),
            refusal: refusal
        )
    }

    // MARK: Forwarding

    /// Live mode, or an exchange that is never recorded: the upstream's bytes, untouched.
    private func passThrough<Adapter: ProviderAdapter>(
        _ exchange: PreparedExchange<Adapter.Details>,
        adapter: Adapter,
        upstream: Upstream
    ) async -> ExchangeResponse {
        let response: UpstreamResponse
        do {
            response = try await send(exchange, to: upstream)
        } catch {
            recorder.note(.failed(storeFailure: nil), for: exchange)
            log(.warning, "upstream failed", exchange: exchange, metadata: ["reason": "\(error.message)"])
            return errorResponse(error, adapter: adapter)
        }
        recorder.note(.passedThrough, for: exchange)
        log(.info, "passed through", exchange: exchange, metadata: ["status": "\(response.status)"])
        let contentType = response.header("content-type")
        let body = response.body
        return ExchangeResponse(
            status: response.status,
            headers: ResponseHeaderPolicy.headers(
                contentType: contentType,
                isStream: ResponseHeaderPolicy.isEventStream(contentType),
                upstream: response.headers
            ),
            body: .writer { emit in
                for try await chunk in body { try await emit(chunk) }
            }
        )
    }

    /// Record modes: forward, record, and answer as a replay of the recording will.
    private func record<Adapter: ProviderAdapter>(
        _ exchange: PreparedExchange<Adapter.Details>,
        adapter: Adapter,
        upstream: Upstream,
        lease: FlightLease?
    ) async -> ExchangeResponse {
        let response: UpstreamResponse
        do {
            response = try await send(exchange, to: upstream)
        } catch {
            lease?.fail(error)
            recorder.note(.failed(storeFailure: nil), for: exchange)
            log(.warning, "upstream failed", exchange: exchange, metadata: ["reason": "\(error.message)"])
            return errorResponse(error, adapter: adapter)
        }
        let contentType = response.header("content-type")
        switch adapter.liveResponse(for: exchange, status: response.status, contentType: contentType) {
        case .whole(let outcomeOf):
            return await recordWhole(
                exchange,
                adapter: adapter,
                upstream: upstream,
                response: response,
                outcomeOf: outcomeOf,
                lease: lease
            )
        case .stream(let transcoder):
            let tee = LiveTee(
                pipeline: self,
                adapter: adapter,
                exchange: exchange,
                upstream: upstream,
                status: response.status,
                lease: lease
            )
            let body = response.body
            return ExchangeResponse(
                status: 200,
                headers: ResponseHeaderPolicy.headers(
                    contentType: transcoder.contentType,
                    isStream: true,
                    upstream: response.headers
                ),
                body: .writer { emit in try await tee.run(body, transcoder: transcoder, emit: emit) }
            )
        }
    }

    /// A body used whole: read to its end, recorded, then answered from the recording.
    private func recordWhole<Adapter: ProviderAdapter>(
        _ exchange: PreparedExchange<Adapter.Details>,
        adapter: Adapter,
        upstream: Upstream,
        response: UpstreamResponse,
        outcomeOf: @Sendable ([UInt8]) -> RecordedOutcome,
        lease: FlightLease?
    ) async -> ExchangeResponse {
        var bytes: [UInt8] = []
        do {
            for try await chunk in response.body { bytes += chunk }
        } catch {
            let failure = Self.upstreamFailure(error, upstream: upstream, midway: true)
            lease?.fail(failure)
            recorder.note(.failed(storeFailure: nil), for: exchange)
            log(.warning, "upstream failed midway", exchange: exchange, metadata: ["reason": "\(failure.message)"])
            return errorResponse(failure, adapter: adapter)
        }
        let live = LiveOutcome(outcome: outcomeOf(bytes), status: response.status)
        let recording = adapter.recording(for: exchange, live: live)
        let path: String
        do {
            path = try recorder.record(recording, for: exchange.recorderRequest)
        } catch {
            let failure = ExchangeError(error)
            lease?.fail(failure)
            recorder.note(.failed(storeFailure: error.message), for: exchange)
            return errorResponse(failure, adapter: adapter)
        }
        lease?.succeed()
        recorder.note(.recorded(path: path), for: exchange)
        log(.info, "recorded", exchange: exchange, metadata: ["path": "\(path)", "status": "\(response.status)"])
        do {
            let plan = try adapter.replayPlan(for: recording, exchange: exchange)
            // The upstream's session headers, not the fresh ones a replay would issue.
            return render(
                plan,
                headers: ResponseHeaderPolicy.headers(contentType: nil, isStream: false, upstream: response.headers)
            )
        } catch {
            let refusal = RecorderError(code: .corruptRecording, message: "\(path): corrupt recording: \(error.reason)")
            return errorResponse(ExchangeError(refusal), adapter: adapter, refusal: refusal)
        }
    }

    /// Sends the exchange's request to `upstream`.
    private func send<Details>(
        _ exchange: PreparedExchange<Details>,
        to upstream: Upstream
    ) async throws(ExchangeError) -> UpstreamResponse {
        if let carrier = PlaceholderKey.carrier(
            headers: exchange.request.upstreamHeaders,
            query: exchange.upstreamQuery
        ) {
            throw ExchangeError(
                status: 401,
                type: "placeholder_api_key",
                message:
                    "Not forwarded to \(upstream.label): \(carrier) holds api-recorder's placeholder key, which no "
                    + "upstream accepts, so nothing was recorded. To record, set the provider's key variable "
                    + "(OPENAI_API_KEY, ANTHROPIC_API_KEY, GEMINI_API_KEY, TAVILY_API_KEY) or --upstream-key; "
                    + "a stand-in server that needs none takes any other value."
            )
        }
        var url = upstream.baseURL + exchange.request.path
        if let query = exchange.upstreamQuery, !query.isEmpty { url += "?" + query }
        let request = UpstreamRequest(
            method: exchange.request.method,
            url: url,
            headers: exchange.request.upstreamHeaders,
            // The ids the upstream issued, where the client sends back the deterministic ones.
            body: recorder.issuedIDs.restore(in: exchange.upstreamBody)
        )
        do {
            return try await upstream.transport.send(request, timeout: upstreamTimeout)
        } catch {
            throw Self.upstreamFailure(error, upstream: upstream, midway: false)
        }
    }

    /// An upstream failure in the one shape every front end sends: 504 for a timeout, 502 otherwise.
    static func upstreamFailure(_ error: any Error, upstream: Upstream, midway: Bool) -> ExchangeError {
        let failure = error as? UpstreamError ?? UpstreamError(.failed, "\(error)")
        switch failure.kind {
        case .timedOut:
            return ExchangeError(
                status: 504,
                type: "upstream_timeout",
                message: "The upstream \(upstream.label) did not answer in time: \(failure.reason)."
            )
        case .cancelled:
            return ExchangeError(
                status: 503,
                type: "request_cancelled",
                message: "The exchange with \(upstream.label) was cancelled: the server is shutting down."
            )
        case .unreachable, .failed:
            return ExchangeError(
                status: 502,
                type: "upstream_unreachable",
                message: midway
                    ? "The upstream \(upstream.label) failed while answering: \(failure.reason)."
                    : "The upstream \(upstream.label) could not be reached: \(failure.reason)."
            )
        }
    }

    // MARK: Logging

    /// Logs an exchange's fate; the message and metadata are built only when the level is enabled.
    func log<Details>(
        _ level: Logger.Level,
        _ message: @autoclosure () -> Logger.Message,
        exchange: PreparedExchange<Details>,
        metadata: @autoclosure () -> Logger.Metadata = [:]
    ) {
        guard logger.logLevel <= level else { return }
        var metadata = metadata()
        metadata["hash"] = "\(exchange.hash)"
        log(level, message(), request: exchange.request, metadata: metadata)
    }

    func log(
        _ level: Logger.Level,
        _ message: @autoclosure () -> Logger.Message,
        request: ExchangeRequest,
        metadata: @autoclosure () -> Logger.Metadata
    ) {
        guard logger.logLevel <= level else { return }
        var metadata = metadata()
        // The path only: a query may hold credentials, and headers and bodies are never logged.
        metadata["method"] = "\(request.method)"
        metadata["path"] = "\(request.path)"
        metadata["test_id"] = "\(request.testID ?? "none")"
        logger.log(level: level, message(), metadata: metadata)
    }
}
