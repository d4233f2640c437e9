import Synchronization

/// A provider's rules: how its requests are identified, how its live responses are recorded, and
/// how a recording is answered. The ``ExchangePipeline`` runs every exchange through one adapter;
/// adapters know nothing of modes, leases, upstreams or front ends.
///
/// `prepare` derives what the rest of the exchange needs (an endpoint kind, a model call, the
/// client's JSON-RPC id) once, into the exchange's ``PreparedExchange/details``, so that no later
/// step parses the request again.
package protocol ProviderAdapter: Sendable {
    /// What ``prepare(_:)`` derived from one request, kept for the rest of its exchange.
    associatedtype Details: Sendable

    /// Understands a request: parses its body, removes secrets, computes its identity.
    /// - Throws: ``ExchangeError`` for a body the API would reject (malformed JSON, invalid UTF-8).
    func prepare(_ request: ExchangeRequest) throws(ExchangeError) -> PreparedExchange<Details>

    /// How a live upstream response with this status and content type is read and recorded.
    func liveResponse(for exchange: PreparedExchange<Details>, status: Int, contentType: String?) -> LiveResponse

    /// Builds the recording of an exchange from what the upstream answered.
    func recording(for exchange: PreparedExchange<Details>, live: LiveOutcome) -> Recording

    /// How to answer `exchange` from `recording`. Record mode answers whole bodies through this too,
    /// from the recording it has just made, so that the client sees what a replay will show.
    /// - Throws: ``RecordingError`` when the recording cannot answer this request (a corrupt file).
    func replayPlan(for recording: Recording, exchange: PreparedExchange<Details>) throws(RecordingError) -> ReplayPlan

    /// An error body in this provider's shape.
    func errorBody(_ error: ExchangeError) -> [UInt8]

    /// The answer to an exchange that is never recorded, in replay mode.
    func localAnswer(for exchange: PreparedExchange<Details>) -> ReplayPlan

    /// What ``replayPlan(for:exchange:)`` depends on besides the recording, when that is all it
    /// depends on: replays with the same key answer the same bytes, so the plan is kept with the
    /// parsed recording and a hit renders nothing. `nil` (the default) renders every time.
    func replayCacheKey(for exchange: PreparedExchange<Details>) -> String?

    /// Set when ``prepare(_:)`` reads nothing of a request but its method, path, query, recorded
    /// base, body, test id and upstream key (never its headers) and has no state: it identifies
    /// this adapter's configuration, and the pipeline reuses the preparation of an identical
    /// request (``PreparationCache``). `nil` (the default) prepares every request.
    var preparationFingerprint: Int? { get }
}

extension ProviderAdapter {
    package func localAnswer(for exchange: PreparedExchange<Details>) -> ReplayPlan {
        ReplayPlan(status: 204, contentType: "application/json", body: .whole([]))
    }

    package func replayCacheKey(for exchange: PreparedExchange<Details>) -> String? { nil }

    package var preparationFingerprint: Int? { nil }
}

/// The replay plans rendered from one parsed recording, by ``ProviderAdapter/replayCacheKey(for:)``.
/// Kept with the recording in the store's cache, so a changed file (a new stamp) starts afresh.
package final class ReplayRenderings: Sendable {
    private let plans = Mutex<[String: ReplayPlan]>([:])

    package init() {}

    package func plan(_ key: String) -> ReplayPlan? { plans.withLock { $0[key] } }

    package func keep(_ plan: ReplayPlan, for key: String) {
        plans.withLock { $0[key] = plan }
    }
}

/// A request an adapter has understood: its identity, what is recorded, what goes upstream, and
/// what the adapter derived from it.
package struct PreparedExchange<Details: Sendable>: Sendable {
    package var request: ExchangeRequest
    package var recorderRequest: RecorderRequest
    /// The request body as it is hashed and stored: parsed, secrets removed.
    package var recordedBody: JSONValue
    /// The body bytes to send upstream (the client's, or with the upstream key in place of its credentials).
    package var upstreamBody: [UInt8]
    /// The query to send upstream, likewise.
    package var upstreamQuery: String?
    /// What the adapter derived from the request for the rest of the exchange.
    package var details: Details
    /// The session's record of deterministic ids and the ids the upstream issued for them, which
    /// adapters add to when they make issued ids deterministic (set by the pipeline).
    package var issuedIDs: IssuedIDs?

    package init(
        request: ExchangeRequest,
        recorderRequest: RecorderRequest,
        recordedBody: JSONValue,
        upstreamBody: [UInt8],
        upstreamQuery: String?,
        details: Details
    ) {
        self.request = request
        self.recorderRequest = recorderRequest
        self.recordedBody = recordedBody
        self.upstreamBody = upstreamBody
        self.upstreamQuery = upstreamQuery
        self.details = details
    }

    package var hash: String { recorderRequest.hash }

    /// The same exchange with other details (for an adapter that hands some requests to another).
    package func with<Other: Sendable>(details other: Other) -> PreparedExchange<Other> {
        var exchange = PreparedExchange<Other>(
            request: request,
            recorderRequest: recorderRequest,
            recordedBody: recordedBody,
            upstreamBody: upstreamBody,
            upstreamQuery: upstreamQuery,
            details: other
        )
        exchange.issuedIDs = issuedIDs
        return exchange
    }
}

/// How a live upstream response is read.
package enum LiveResponse: Sendable {
    /// The body is used whole (a JSON object, an error): read to its end, recorded, and answered
    /// from the recording exactly as a replay will answer.
    case whole(@Sendable (_ body: [UInt8]) -> RecordedOutcome)
    /// A stream: each complete event goes to the client as soon as it arrives, in the form a
    /// replay will send it, and is kept for the recording.
    case stream(any StreamTranscoder)
}

/// Turns a live upstream stream into the frames the client receives and what is recorded. The
/// frames must be those a replay of the recording sends; one value serves one response.
package protocol StreamTranscoder: Sendable {
    /// The content type a replay of the stream sends.
    var contentType: String { get }
    /// Takes the next bytes from upstream; returns the bytes to send to the client now.
    mutating func consume(_ bytes: [UInt8]) -> [UInt8]
    /// The upstream finished: the last bytes for the client, and what to record. The last bytes go
    /// out only once the recording is saved, so a client that has its answer finds the file.
    mutating func finish() -> (tail: [UInt8], outcome: RecordedOutcome)
    /// The upstream failed midway: what to record (the chunks so far and the error).
    mutating func fail(_ reason: String) -> RecordedOutcome
    /// Extra response keys to record (`chunk_offsets_ms`).
    var extraResponseKeys: JSONObject { get }
}

/// What the upstream answered, ready to be recorded.
package struct LiveOutcome: Sendable {
    package var outcome: RecordedOutcome
    /// The upstream's HTTP status.
    package var status: Int
    /// Extra response keys (`chunk_offsets_ms`).
    package var extraResponseKeys: JSONObject

    package init(outcome: RecordedOutcome, status: Int, extraResponseKeys: JSONObject = JSONObject()) {
        self.outcome = outcome
        self.status = status
        self.extraResponseKeys = extraResponseKeys
    }
}

/// How to answer from a recording.
package struct ReplayPlan: Sendable {
    package enum Body: Sendable {
        /// One body.
        case whole([UInt8])
        /// A stream: its frames in order, each with the gap before it in milliseconds when known;
        /// when the recorded stream failed, the connection is cut after the last frame.
        case stream(frames: [[UInt8]], gapsMilliseconds: [Int]?, failsAtEnd: Bool)
    }

    package var status: Int
    package var contentType: String
    package var body: Body
    /// Extra response headers (an MCP session id).
    package var headers: [(name: String, value: String)]

    package init(status: Int, contentType: String, body: Body, headers: [(name: String, value: String)] = []) {
        self.status = status
        self.contentType = contentType
        self.body = body
        self.headers = headers
    }

    /// A recorded text body (an upstream that answered something other than JSON), sent as it came.
    package static func text(_ text: String, status: Int) -> ReplayPlan {
        ReplayPlan(status: status, contentType: "text/plain; charset=utf-8", body: .whole(Array(text.utf8)))
    }

    /// A recorded stream as `frames`, paced by the recording's `chunk_offsets_ms` and cut where
    /// the recorded stream failed.
    static func recordedStream(_ frames: [[UInt8]], contentType: String, of recording: Recording) -> ReplayPlan {
        ReplayPlan(
            status: 200,
            contentType: contentType,
            body: .stream(
                frames: frames,
                gapsMilliseconds: StreamPacing.gaps(
                    fromOffsets: recording.response["chunk_offsets_ms"],
                    frames: frames.count
                ),
                failsAtEnd: recording.isException
            )
        )
    }
}

/// The arrival offsets of a live stream's chunks, recorded as `chunk_offsets_ms`.
package struct ChunkOffsets: Sendable {
    private let start = ContinuousClock.now
    package private(set) var milliseconds: [Int] = []

    package init() {}

    /// Notes that a chunk arrived now.
    package mutating func markArrival() {
        let elapsed = ContinuousClock.now - start
        milliseconds.append(
            Int(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000)
        )
    }

    /// The response key that records them.
    package var responseKeys: JSONObject { ["chunk_offsets_ms": .array(milliseconds.map(JSONValue.integer))] }
}

/// Replay pacing from recorded chunk arrival offsets.
package enum StreamPacing {
    /// The gap before each frame, from `chunk_offsets_ms` (frames beyond the offsets, such as a
    /// final `[DONE]`, get no gap). `nil` when the recording has no offsets.
    package static func gaps(fromOffsets offsets: JSONValue?, frames: Int) -> [Int]? {
        guard let offsets = offsets?.arrayValue?.compactMap(\.intValue), !offsets.isEmpty else { return nil }
        var previous = 0
        var gaps: [Int] = []
        for index in 0..<frames {
            if index < offsets.count {
                gaps.append(max(0, offsets[index] - previous))
                previous = offsets[index]
            } else {
                gaps.append(0)
            }
        }
        return gaps
    }
}
