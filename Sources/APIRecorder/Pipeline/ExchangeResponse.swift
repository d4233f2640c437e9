/// What the pipeline answers a front end: a status, headers already filtered by the one
/// response-header policy, and a body that the front end writes out in its own types.
package struct ExchangeResponse: Sendable {
    package var status: Int
    /// The headers to send, content type first.
    package var headers: [(name: String, value: String)]
    package var body: ExchangeBody
    /// Why the recorder refused the request (a miss, an unsafe test id, a corrupt recording), for
    /// front ends that report misses to the running test.
    package var refusal: RecorderError?
    /// How the exchange ended, for the journal and the metrics (a stream that fails later is an
    /// error).
    package var outcome: JournalOutcome = .error
    /// The request hash, when the request was understood.
    package var hash: String?

    package init(
        status: Int,
        headers: [(name: String, value: String)],
        body: ExchangeBody,
        refusal: RecorderError? = nil
    ) {
        self.status = status
        self.headers = headers
        self.body = body
        self.refusal = refusal
    }

    /// The first header named `name`, case-insensitively.
    package func header(_ name: String) -> String? {
        let wanted = name.lowercased()
        return headers.first { $0.name.lowercased() == wanted }?.value
    }
}

/// A response body: bytes known in full, or a writer that sends chunks as they become ready
/// (a replayed stream, paced or not, or a live one being recorded). A writer that throws cuts the
/// response there: the front end must end it abnormally (close the connection, fail the stream).
package struct ExchangeBody: Sendable {
    /// Sends the body through `emit`, chunk by chunk.
    package typealias Writer = @Sendable (_ emit: ([UInt8]) async throws -> Void) async throws -> Void

    private enum Content: Sendable {
        case bytes([UInt8])
        case writer(Writer)
    }

    private let content: Content

    /// A body of known bytes.
    package static func bytes(_ bytes: [UInt8]) -> ExchangeBody { ExchangeBody(content: .bytes(bytes)) }

    /// A body written as it becomes ready.
    package static func writer(_ writer: @escaping Writer) -> ExchangeBody { ExchangeBody(content: .writer(writer)) }

    /// The whole body, when it is known before anything is sent (front ends can send it at once).
    package var completeBytes: [UInt8]? {
        if case .bytes(let bytes) = content { return bytes }
        return nil
    }

    /// Sends the body through `emit`.
    /// - Throws: where the body is cut (``RecordedStreamFailure``, the upstream's error, a
    ///   recording that could not be saved), or `emit`'s own error.
    package func write(_ emit: ([UInt8]) async throws -> Void) async throws {
        switch content {
        case .bytes(let bytes):
            if !bytes.isEmpty { try await emit(bytes) }
        case .writer(let writer):
            try await writer(emit)
        }
    }

    /// The whole body, collected.
    package func collect() async throws -> [UInt8] {
        if let completeBytes { return completeBytes }
        var bytes: [UInt8] = []
        try await write { bytes += $0 }
        return bytes
    }
}

/// Thrown where a replayed stream ends because the recorded stream failed there: the client sees
/// the same cut as when it was recorded.
public struct RecordedStreamFailure: Error, Sendable, CustomStringConvertible {
    public init() {}
    public var description: String { "the recorded stream failed here" }
}

/// The upstream response headers a client is given, the same in every mode and front end.
///
/// Only what a replay can give too reaches the client: the content type (from the recording's
/// rules when recording, so record and replay agree), `Cache-Control: no-cache` on event streams,
/// and the headers a protocol needs to go on (MCP's `Mcp-Session-Id`, which a replay issues anew).
/// Everything else an upstream sends (rate-limit counters, request ids, dates, cookies) is left
/// out: a replay could not show it, and it is no test's business.
package enum ResponseHeaderPolicy {
    /// Upstream headers passed on as they came.
    package static let passedHeaders = ["mcp-session-id"]

    /// The headers of a response with `contentType`, plus those of `upstream` the policy passes.
    package static func headers(
        contentType: String?,
        isStream: Bool,
        upstream: [(name: String, value: String)] = []
    ) -> [(name: String, value: String)] {
        var headers: [(name: String, value: String)] = []
        if let contentType, !contentType.isEmpty { headers.append(("Content-Type", contentType)) }
        if isStream { headers.append(("Cache-Control", "no-cache")) }
        for (name, value) in upstream where passedHeaders.contains(name.lowercased()) {
            headers.append((name, value))
        }
        return headers
    }

    /// Whether a content type is an event stream.
    package static func isEventStream(_ contentType: String?) -> Bool {
        contentType?.lowercased().hasPrefix("text/event-stream") == true
    }
}
