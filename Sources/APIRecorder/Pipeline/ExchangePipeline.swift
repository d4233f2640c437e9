import Foundation
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
    /// Where exchange metrics go (`nil`: nowhere).
    package var metrics: ExchangeMetrics?
    /// The preparations of recent requests, reused when one is sent again.
    let preparations = PreparationCache()
    let logger: Logger

    package init(
        recorder: Recorder,
        pace: ReplayPace = .none,
        upstreamTimeout: Duration = .seconds(300),
        metrics: ExchangeMetrics? = nil,
        logger: Logger? = nil
    ) {
        self.recorder = recorder
        self.pace = pace
        self.upstreamTimeout = upstreamTimeout
        self.metrics = metrics
        self.logger = logger ?? recorder.logger
    }

    /// Answers one HTTP exchange. Never throws: every failure is an error response in the
    /// adapter's shape.
    ///
    /// A fault set for the exchange (its `X-Recorder-Fault` header, or its test id's in
    /// ``Recorder/faults``) is applied here, in every mode; every exchange is journaled and
    /// measured when its answer ends.
    /// - Parameter upstream: where the request goes when it is forwarded (record and live modes).
    package func respond<Adapter: ProviderAdapter>(
        to request: ExchangeRequest,
        adapter: Adapter,
        upstream: Upstream
    ) async -> ExchangeResponse {
        let started = ContinuousClock.now
        metrics?.started()
        var entry = JournalEntry(
            time: Date(),
            testID: request.testID,
            method: request.method,
            path: request.path,
            route: upstream.name,
            hash: nil,
            outcome: .error,
            status: 0,
            durationMilliseconds: 0,
            fault: nil
        )
        let fault: Fault?
        do {
            fault = try FaultInjection.fault(for: request, table: recorder.faults)
        } catch {
            recorder.note(.failed(storeFailure: nil), testID: request.testID)
            let refusal = ExchangeError(
                status: 400,
                type: "invalid_fault",
                message: "The X-Recorder-Fault header is not a fault: \(error.description)."
            )
            return finished(errorResponse(refusal, adapter: adapter), entry: entry, started: started)
        }
        guard let fault else {
            return finished(await answer(request, adapter: adapter, upstream: upstream), entry: entry, started: started)
        }
        entry.fault = fault.description
        recorder.note(.faulted, testID: request.testID)
        log(.info, "fault injected", request: request, metadata: ["fault": "\(fault)"])
        if let delay = fault.delay { try? await Task.sleep(for: delay) }
        var response: ExchangeResponse
        if let status = fault.status {
            let error = ExchangeError(
                status: status,
                type: FaultInjection.errorType(status),
                message: "Injected by api-recorder (\(fault)): not forwarded and not recorded."
            )
            response = errorResponse(error, adapter: adapter)
            if let retryAfter = fault.retryAfter { response.headers.append(("Retry-After", "\(retryAfter)")) }
            response.outcome = .fault
        } else if fault.malformed {
            response = FaultInjection.malformedAnswer(for: request)
            response.outcome = .fault
        } else {
            response = FaultInjection.shaped(await answer(request, adapter: adapter, upstream: upstream), by: fault)
        }
        return finished(response, entry: entry, started: started)
    }

    /// Journals and measures the exchange when its answer has been sent (a stream, at its end or cut).
    private func finished(
        _ response: ExchangeResponse,
        entry: JournalEntry,
        started: ContinuousClock.Instant
    ) -> ExchangeResponse {
        var answered = entry
        answered.status = response.status
        answered.hash = response.hash
        let outcome = response.outcome
        guard response.body.completeBytes == nil else {
            Self.end(answered, outcome: outcome, started: started, recorder: recorder, metrics: metrics)
            return response
        }
        var journaled = response
        let body = response.body
        let (recorder, metrics) = (recorder, metrics)
        journaled.body = .writer { [answered] emit in
            do {
                try await body.write(emit)
            } catch {
                let failed: JournalOutcome = outcome == .fault ? .fault : .error
                Self.end(answered, outcome: failed, started: started, recorder: recorder, metrics: metrics)
                throw error
            }
            Self.end(answered, outcome: outcome, started: started, recorder: recorder, metrics: metrics)
        }
        return journaled
    }

    private static func end(
        _ entry: JournalEntry,
        outcome: JournalOutcome,
        started: ContinuousClock.Instant,
        recorder: Recorder,
        metrics: ExchangeMetrics?
    ) {
        var entry = entry
        let elapsed = ContinuousClock.now - started
        entry.outcome = outcome
        entry.durationMilliseconds = elapsed.milliseconds
        recorder.journal.append(entry)
        if let metrics {
            let route = entry.route ?? ""
            metrics.ended(route: route, outcome: outcome)
            if outcome == .recorded || outcome == .passedThrough { metrics.upstreamLatency(route: route, elapsed) }
        }
    }

    /// The exchange itself: prepare, decide, and replay, answer locally or forward.
    private func answer<Adapter: ProviderAdapter>(
        _ request: ExchangeRequest,
        adapter: Adapter,
        upstream: Upstream
    ) async -> ExchangeResponse {
        var exchange: PreparedExchange<Adapter.Details>
        do {
            exchange = try preparations.prepare(request, with: adapter)
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
            var response = errorResponse(ExchangeError(error), adapter: adapter, refusal: error)
            response.outcome = error.code == .recordingNotFound ? .missed : .error
            response.hash = exchange.hash
            return response
        }

        var response = await answer(exchange, decision: decision, adapter: adapter, upstream: upstream)
        response.hash = exchange.hash
        return response
    }

    /// The exchange as `decision` says.
    private func answer<Adapter: ProviderAdapter>(
        _ exchange: PreparedExchange<Adapter.Details>,
        decision: RecorderDecision,
        adapter: Adapter,
        upstream: Upstream
    ) async -> ExchangeResponse {
        switch decision {
        case .answerLocally:
            recorder.note(.answeredLocally, for: exchange)
            var response = render(adapter.localAnswer(for: exchange))
            response.outcome = .replayed
            return response
        case .replay(let hit):
            let plan: ReplayPlan
            do {
                let key = adapter.replayCacheKey(for: exchange)
                if let key, let rendered = hit.renderings.plan(key) {
                    plan = rendered
                } else {
                    plan = try adapter.replayPlan(for: hit.recording, exchange: exchange)
                    if let key { hit.renderings.keep(plan, for: key) }
                }
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
            var response = render(plan)
            response.outcome = .replayed
            return response
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
        var passed = ExchangeResponse(
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
        passed.outcome = .passedThrough
        return passed
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
            var recorded = ExchangeResponse(
                status: 200,
                headers: ResponseHeaderPolicy.headers(
                    contentType: transcoder.contentType,
                    isStream: true,
                    upstream: response.headers
                ),
                body: .writer { emit in try await tee.run(body, transcoder: transcoder, emit: emit) }
            )
            recorded.outcome = .recorded
            return recorded
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
            var recorded = render(
                plan,
                headers: ResponseHeaderPolicy.headers(contentType: nil, isStream: false, upstream: response.headers)
            )
            recorded.outcome = .recorded
            return recorded
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
            let sent = ContinuousClock.now
            let response = try await upstream.transport.send(request, timeout: upstreamTimeout)
            metrics?.upstreamFirstByte(route: upstream.name ?? "", ContinuousClock.now - sent)
            return response
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
