/// The HTTP-level contract between front ends (the proxy, the Swift hooks) and the provider
/// adapters: what a request looks like once routed, and the errors sent back in a provider's shape.

/// A request as a front end received it, after routing.
package struct ExchangeRequest: Sendable {
    package var method: String
    /// The path below the route (`/chat/completions`), without the query.
    package var path: String
    /// The raw query string, without `?`, or `nil`.
    package var query: String?
    /// The base URL recordings name for this route (`https://api.openai.com/v1`).
    package var recordedBase: String
    /// The headers to forward (the front end has already put an upstream key in place). They are
    /// never stored, hashed or logged.
    package var headers: [(name: String, value: String)]
    package var body: [UInt8]
    package var testID: String?
    /// The key that replaces credentials the client put in the query or the body (`--upstream-key`).
    package var upstreamKey: String?

    package init(
        method: String,
        path: String,
        query: String?,
        recordedBase: String,
        headers: [(name: String, value: String)],
        body: [UInt8],
        testID: String?,
        upstreamKey: String? = nil
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
    package var recordedURL: String { recordedBase + path }

    /// The body as JSON; an empty body is `{}`.
    /// - Throws: ``ExchangeError`` 400 naming the byte offset of malformed JSON or invalid UTF-8.
    package func jsonBody(errorType: String = "invalid_request_error") throws(ExchangeError) -> JSONValue {
        guard !body.isEmpty else { return .object(JSONObject()) }
        do {
            // Deeper than the recordings may hold is refused here, before anything is forwarded.
            return try JSONValue(parsing: body, maximumDepth: JSONValue.maximumDepth)
        } catch {
            throw ExchangeError(
                status: 400,
                type: errorType,
                message: "The request body is not valid JSON: \(error.description)."
            )
        }
    }

    /// The first header named `name` (lowercase), case-insensitively, without allocating: every
    /// exchange asks for a few.
    package func header(_ name: String) -> String? {
        headers.first { Self.equalIgnoringASCIICase($0.name, lowercase: name) }?.value
    }

    /// Whether `name` is `lowercase` in any ASCII case.
    static func equalIgnoringASCIICase(_ name: String, lowercase: String) -> Bool {
        guard name.utf8.count == lowercase.utf8.count else { return false }
        return zip(name.utf8, lowercase.utf8).allSatisfy { byte, wanted in
            byte == wanted || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") && byte + 32 == wanted)
        }
    }

    /// Headers that never go upstream: hop-by-hop ones, and the recorder's own (test ids, faults).
    package static let localHeaders: Set<String> = [
        "host", "content-length", "connection", "keep-alive", "transfer-encoding", "upgrade", "te", "trailer",
        "proxy-authorization", "accept-encoding", "x-test-id", "x-ogx-provider-data", "x-llamastack-provider-data",
        "x-recorder-fault",
    ]

    /// The headers to send upstream: the client's, minus ``localHeaders``.
    package var upstreamHeaders: [(name: String, value: String)] {
        headers.filter { !Self.localHeaders.contains($0.name.lowercased()) }
    }
}

/// An error to send to the client in the provider's own error shape.
package struct ExchangeError: Error, Sendable, CustomStringConvertible {
    /// The HTTP status.
    package var status: Int
    /// A short machine-readable type (`invalid_request_error`, `recording_not_found`, ...).
    package var type: String
    package var message: String
    /// Extra members of the provider's error object (a miss's `nearest`).
    package var details: JSONObject

    package init(status: Int, type: String, message: String, details: JSONObject = JSONObject()) {
        self.status = status
        self.type = type
        self.message = message
        self.details = details
    }

    package var description: String { "\(status) \(type): \(message)" }

    /// The status for a recorder failure: a miss is a 404, which SDKs do not retry.
    package init(_ error: RecorderError) {
        let status: Int
        switch error.code {
        case .recordingNotFound: status = 404
        case .unsafeTestID: status = 400
        default: status = 500
        }
        self.init(status: status, type: error.code.description, message: error.message)
        // A miss says which recording was probably meant, and what differs (null: none of that endpoint).
        if error.code == .recordingNotFound { details["nearest"] = error.diagnosis?.json ?? .null }
    }
}
