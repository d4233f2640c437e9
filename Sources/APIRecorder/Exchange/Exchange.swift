/// The HTTP-level contract between front ends (the proxy, the Swift hooks) and the provider
/// adapters that know how each API identifies requests and frames responses.
///
/// A front end turns what it received into an ``ExchangeRequest``, asks an adapter to
/// ``ProviderAdapter/prepare(_:)`` it, lets the ``Recorder`` decide, and then either renders the
/// adapter's ``ReplayPlan`` or pumps the upstream response through the adapter's
/// ``LiveTranscoder``, which yields what the client gets and what is recorded.

/// A request as a front end received it, after routing.
public struct ExchangeRequest: Sendable {
    public var method: String
    /// The path below the route (`/chat/completions`), without the query.
    public var path: String
    /// The raw query string, without `?`, or `nil`.
    public var query: String?
    /// The base URL recordings name for this route (`https://api.openai.com/v1`).
    public var recordedBase: String
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]
    public var testID: String?
    /// The key the front end sends upstream instead of the client's (`--upstream-key`), for
    /// adapters that carry keys in bodies.
    public var upstreamKey: String?

    public init(
        method: String, path: String, query: String?, recordedBase: String, headers: [(name: String, value: String)],
        body: [UInt8], testID: String?, upstreamKey: String? = nil
    ) {
        self.method = method
        self.path = path
        self.query = query
        self.recordedBase = recordedBase
        self.headers = headers
        self.body = body
        self.testID = testID
        self.upstreamKey = upstreamKey
    }

    /// The URL a recording names: recorded base and path joined as strings, as the reference does.
    public var recordedURL: String { recordedBase + path }

    /// The body as JSON; an empty body is `{}`.
    /// - Throws: ``ExchangeError`` 400 naming the byte offset of malformed JSON or invalid UTF-8.
    public func jsonBody(errorType: String = "invalid_request_error") throws(ExchangeError) -> JSONValue {
        guard !body.isEmpty else { return .object(JSONObject()) }
        do {
            return try JSONValue(parsing: body)
        } catch {
            throw ExchangeError(status: 400, type: errorType, message: "The request body is not valid JSON: \(error.description).")
        }
    }

    /// The first header named `name`, case-insensitively.
    public func header(_ name: String) -> String? {
        let wanted = name.lowercased()
        return headers.first { $0.name.lowercased() == wanted }?.value
    }

    /// Headers that never go upstream: hop-by-hop ones, and the recorder's own (test ids).
    static let localHeaders: Set<String> = [
        "host", "content-length", "connection", "keep-alive", "transfer-encoding", "upgrade", "te", "trailer",
        "proxy-authorization", "accept-encoding", "x-test-id", "x-ogx-provider-data", "x-llamastack-provider-data",
    ]

    /// The headers to send upstream: the client's, minus ``localHeaders``.
    public var upstreamHeaders: [(name: String, value: String)] {
        headers.filter { !Self.localHeaders.contains($0.name.lowercased()) }
    }
}

/// An error to send to the client in the provider's own error shape.
public struct ExchangeError: Error, Sendable, CustomStringConvertible {
    /// The HTTP status.
    public var status: Int
    /// A short machine-readable type (`invalid_request_error`, `recording_not_found`, ...).
    public var type: String
    public var message: String

    public init(status: Int, type: String, message: String) {
        self.status = status
        self.type = type
        self.message = message
    }

    public var description: String { "\(status) \(type): \(message)" }

    /// The status for a recorder failure: a miss is a 404, which SDKs do not retry.
    public init(_ error: RecorderError) {
        switch error.code {
        case .recordingNotFound: self.init(status: 404, type: "recording_not_found", message: error.message)
        case .unsafeTestID: self.init(status: 400, type: "invalid_test_id", message: error.message)
        case .corruptRecording: self.init(status: 500, type: "corrupt_recording", message: error.message)
        case .storage: self.init(status: 500, type: "recording_storage_error", message: error.message)
        }
    }
}

/// A request an adapter has understood: its identity, and how to build its recording.
public struct PreparedExchange: Sendable {
    public var request: ExchangeRequest
    public var recorderRequest: RecorderRequest
    /// The parsed JSON body (with secrets removed), as it is recorded.
    public var body: JSONValue
    /// Whether the client asked for a stream.
    public var wantsStream: Bool
    /// The logical endpoint (`/v1/chat/completions`).
    public var endpoint: String
    /// The bytes to send upstream.
    public var upstreamBody: [UInt8]

    public init(
        request: ExchangeRequest, recorderRequest: RecorderRequest, body: JSONValue, wantsStream: Bool, endpoint: String,
        upstreamBody: [UInt8]
    ) {
        self.request = request
        self.recorderRequest = recorderRequest
        self.body = body
        self.wantsStream = wantsStream
        self.endpoint = endpoint
        self.upstreamBody = upstreamBody
    }

    public var hash: String { recorderRequest.identity.hash }
}

/// How to answer from a recording.
public struct ReplayPlan: Sendable {
    public enum Body: Sendable {
        /// One body.
        case whole([UInt8])
        /// A stream: its frames in order, each with the gap before it in milliseconds when known,
        /// then, when the recorded stream failed, the connection is cut after the last frame.
        case stream(frames: [[UInt8]], gapsMilliseconds: [Int]?, failsAtEnd: Bool)
    }

    public var status: Int
    public var contentType: String
    public var body: Body
    /// Extra response headers (an MCP session id).
    public var headers: [(name: String, value: String)]

    public init(status: Int, contentType: String, body: Body, headers: [(name: String, value: String)] = []) {
        self.status = status
        self.contentType = contentType
        self.body = body
        self.headers = headers
    }
}

extension ReplayPlan {
    /// A recorded stream as `frames`, paced by the recording's `chunk_offsets_ms` and cut where
    /// the recorded stream failed.
    static func recordedStream(_ frames: [[UInt8]], contentType: String, of recording: Recording) -> ReplayPlan {
        ReplayPlan(
            status: 200, contentType: contentType,
            body: .stream(
                frames: frames,
                gapsMilliseconds: StreamPacing.gaps(fromOffsets: recording.response["chunk_offsets_ms"], frames: frames.count),
                failsAtEnd: recording.isException))
    }
}

/// Turns a live upstream response into what the client receives and what is recorded.
/// One value serves one response.
public protocol LiveTranscoder: Sendable {
    /// Takes the next bytes from upstream; returns the bytes to send to the client now.
    mutating func consume(_ bytes: [UInt8]) -> [UInt8]
    /// The upstream finished: the last bytes for the client, and the recording's outcome
    /// (`nil` when the response should not be recorded).
    mutating func finish() -> (tail: [UInt8], outcome: RecordedOutcome?)
    /// The upstream failed mid-response: the outcome to record (chunks so far and the error).
    mutating func fail(_ reason: String) -> RecordedOutcome?
    /// Extra response keys to record (for example `chunk_offsets_ms`).
    var extraResponseKeys: JSONObject { get }
}

extension LiveTranscoder {
    public var extraResponseKeys: JSONObject { JSONObject() }
}

/// A transcoder for responses that are used whole (JSON bodies, error bodies): it collects the
/// bytes and sends nothing until ``LiveTranscoder/finish()``; a failure midway records nothing.
protocol WholeBodyTranscoding: LiveTranscoder {
    var buffer: [UInt8] { get set }
}

extension WholeBodyTranscoding {
    mutating func consume(_ bytes: [UInt8]) -> [UInt8] {
        buffer.append(contentsOf: bytes)
        return []
    }

    mutating func fail(_ reason: String) -> RecordedOutcome? { nil }
}

/// The arrival offsets of a live stream's chunks, recorded as `chunk_offsets_ms`.
public struct ChunkOffsets: Sendable {
    private let start = ContinuousClock.now
    public private(set) var milliseconds: [Int] = []

    public init() {}

    /// Notes that a chunk arrived now.
    public mutating func markArrival() {
        let elapsed = ContinuousClock.now - start
        milliseconds.append(Int(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000))
    }

    /// The response key that records them.
    public var responseKeys: JSONObject { ["chunk_offsets_ms": .array(milliseconds.map(JSONValue.integer))] }
}

/// Replay pacing from recorded chunk arrival offsets.
public enum StreamPacing {
    /// The gap before each frame, from `chunk_offsets_ms` (frames beyond the offsets, such as a
    /// final `[DONE]`, get no gap). `nil` when the recording has no offsets.
    public static func gaps(fromOffsets offsets: JSONValue?, frames: Int) -> [Int]? {
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

/// A provider's rules: identity, recording shape, live transcoding and replay.
public protocol ProviderAdapter: Sendable {
    /// Understands a request: parses its body, computes its identity.
    /// - Throws: ``ExchangeError`` for a body the API would reject (malformed JSON, invalid UTF-8).
    func prepare(_ request: ExchangeRequest) throws(ExchangeError) -> PreparedExchange

    /// The transcoder for a live response with this status and content type.
    func transcoder(for exchange: PreparedExchange, status: Int, contentType: String?) -> any LiveTranscoder

    /// Builds the recording of an exchange from its outcome.
    func recording(
        for exchange: PreparedExchange, outcome: RecordedOutcome, extraResponseKeys: JSONObject
    ) -> Recording

    /// How to answer `exchange` from `recording`.
    func replayPlan(for recording: Recording, exchange: PreparedExchange) -> ReplayPlan

    /// An error body in this provider's shape.
    func errorBody(_ error: ExchangeError) -> [UInt8]

    /// The answer to an exchange that is not recorded, in replay mode.
    func localAnswer(for exchange: PreparedExchange) -> ReplayPlan
}

extension ProviderAdapter {
    public func localAnswer(for exchange: PreparedExchange) -> ReplayPlan {
        ReplayPlan(status: 204, contentType: "application/json", body: .whole([]))
    }
}

/// The record-mode tee, written once for every front end: a live upstream body goes through the
/// adapter's ``LiveTranscoder``, what the client should get is emitted as soon as it is ready,
/// and the recording is saved when the upstream ends (before the last bytes go out, so a client
/// that has its answer finds the file) or fails midway (what came, and the failure).
public enum LiveTee {
    /// Runs the tee to the end of the upstream body.
    /// - Parameters:
    ///   - upstream: the upstream's body; `bytes` turns its elements into bytes.
    ///   - flight: ended once the recording is saved (or the exchange failed).
    ///   - emit: sends bytes to the client. When it throws (the client left), the upstream is
    ///     still read to its end so that the recording is complete; the error is rethrown then.
    /// - Throws: the upstream's error, after recording the failure; or the client's.
    public static func run<Body: AsyncSequence>(
        _ upstream: Body, bytes: (Body.Element) -> [UInt8], transcoder: any LiveTranscoder, exchange: PreparedExchange,
        adapter: any ProviderAdapter, recorder: Recorder, flight: FlightLease?,
        emit: ([UInt8]) async throws -> Void
    ) async throws {
        var transcoder = transcoder
        var clientError: (any Error)?
        do {
            for try await element in upstream {
                let out = transcoder.consume(bytes(element))
                guard !out.isEmpty, clientError == nil else { continue }
                do {
                    try await emit(out)
                } catch {
                    clientError = error
                }
            }
        } catch {
            if let outcome = transcoder.fail("\(error)") { save(outcome, transcoder: transcoder, exchange, adapter, recorder) }
            await flight?.end()
            throw error
        }
        let (tail, outcome) = transcoder.finish()
        if let outcome { save(outcome, transcoder: transcoder, exchange, adapter, recorder) }
        await flight?.end()
        if let clientError { throw clientError }
        if !tail.isEmpty { try await emit(tail) }
    }

    /// Saves a recording; a store failure is logged by the recorder and does not fail the client.
    private static func save(
        _ outcome: RecordedOutcome, transcoder: any LiveTranscoder, _ exchange: PreparedExchange, _ adapter: any ProviderAdapter,
        _ recorder: Recorder
    ) {
        let recording = adapter.recording(for: exchange, outcome: outcome, extraResponseKeys: transcoder.extraResponseKeys)
        _ = try? recorder.record(recording, for: exchange.recorderRequest)
    }
}
