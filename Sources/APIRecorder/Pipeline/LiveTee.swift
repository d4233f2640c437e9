import Logging

/// The record-mode tee of a live stream: each upstream chunk goes through the adapter's
/// ``StreamTranscoder``, and what a replay would send is emitted as soon as it is ready; the
/// recording is saved when the upstream ends, before the last bytes go out (so a client that has
/// its answer finds the file), or when it fails midway (what came, and the failure).
///
/// - A client that leaves does not stop the recording: the upstream is read to its end.
/// - A recording that cannot be saved cuts the stream before its end, so the client sees an
///   error, as it would on a replay miss, rather than a clean end with nothing saved.
/// - A cancelled exchange (the server is shutting down) writes nothing: no partial recording.
struct LiveTee<Adapter: ProviderAdapter>: Sendable {
    let pipeline: ExchangePipeline
    let adapter: Adapter
    let exchange: PreparedExchange<Adapter.Details>
    let upstream: Upstream
    /// The upstream's status, for the recording.
    let status: Int
    let lease: FlightLease?

    private var recorder: Recorder { pipeline.recorder }

    /// Runs the tee to the end of the upstream body.
    /// - Throws: the upstream's failure (after recording it), a store failure, or the client's error.
    func run(
        _ body: UpstreamBody,
        transcoder: any StreamTranscoder,
        emit: ([UInt8]) async throws -> Void
    ) async throws {
        var transcoder = transcoder
        var clientError: (any Error)?
        do {
            for try await chunk in body {
                let out = transcoder.consume(chunk)
                guard !out.isEmpty, clientError == nil else { continue }
                do {
                    try await emit(out)
                } catch {
                    clientError = error
                }
            }
        } catch {
            let failure = error as? UpstreamError ?? UpstreamError(.failed, "\(error)")
            if failure.kind == .cancelled || Task.isCancelled {
                lease?.fail(ExchangePipeline.upstreamFailure(failure, upstream: upstream, midway: true))
                recorder.note(.failed(storeFailure: nil), for: exchange)
                pipeline.log(.warning, "cancelled: nothing recorded", exchange: exchange)
                throw error
            }
            // The stream failed: record what came and the failure, then fail the client the same way.
            _ = save(transcoder.fail(failure.reason), extraKeys: transcoder.extraResponseKeys)
            throw error
        }
        if Task.isCancelled {
            // A cancelled task can see a body end early as if it were complete: record nothing.
            lease?.fail(
                ExchangePipeline.upstreamFailure(
                    UpstreamError(.cancelled, "cancelled"),
                    upstream: upstream,
                    midway: true
                )
            )
            recorder.note(.failed(storeFailure: nil), for: exchange)
            pipeline.log(.warning, "cancelled: nothing recorded", exchange: exchange)
            throw CancellationError()
        }
        let (tail, outcome) = transcoder.finish()
        if let storeError = save(outcome, extraKeys: transcoder.extraResponseKeys) { throw storeError }
        if let clientError { throw clientError }
        if !tail.isEmpty { try await emit(tail) }
    }

    /// Saves the recording, ends the lease and counts; returns the store's error, if any.
    private func save(_ outcome: RecordedOutcome, extraKeys: JSONObject) -> RecorderError? {
        let live = LiveOutcome(outcome: outcome, status: status, extraResponseKeys: extraKeys)
        let recording = adapter.recording(for: exchange, live: live)
        do {
            let path = try recorder.record(recording, for: exchange.recorderRequest)
            lease?.succeed()
            recorder.note(.recorded(path: path), for: exchange)
            pipeline.log(.info, "recorded", exchange: exchange, metadata: ["path": "\(path)", "stream": "true"])
            return nil
        } catch {
            lease?.fail(ExchangeError(error))
            recorder.note(.failed(storeFailure: error.message), for: exchange)
            return error
        }
    }

}
