/// Keeps credentials out of recordings and identities.
///
/// Request headers are never stored at all. What remains are credentials that APIs accept in the
/// body (`api_key`, `apiKey`: Tavily and others) or the query (`key=`: Gemini). They are removed
/// from what is hashed and stored; what goes upstream keeps them, or carries the front end's own
/// upstream key in their place.
public struct SecretRedaction: Sendable {
    /// Top-level body keys that hold credentials.
    public var bodyKeys: Set<String>
    /// Query parameters that hold credentials.
    public var queryParameters: Set<String>

    public init(bodyKeys: Set<String> = ["api_key", "apiKey"], queryParameters: Set<String> = ["key"]) {
        self.bodyKeys = bodyKeys
        self.queryParameters = queryParameters
    }

    /// The body to hash and store, and the bytes to send upstream (`original`, or, when an
    /// upstream key is given and the body held a credential, the body with that key in its place).
    public func redact(body: JSONValue, original: [UInt8], upstreamKey: String?) -> (recorded: JSONValue, upstream: [UInt8]) {
        guard case .object(var object) = body else { return (body, original) }
        let secrets = object.keys.filter(bodyKeys.contains)
        guard !secrets.isEmpty else { return (body, original) }
        for key in secrets { object.removeValue(forKey: key) }
        guard let upstreamKey else { return (.object(object), original) }
        var upstream = object
        for key in secrets { upstream[key] = .string(upstreamKey) }
        return (.object(object), JSONValue.object(upstream).compactBytes())
    }

    /// The query without credential parameters, or `nil` when nothing is left.
    public func redact(query: String?) -> String? {
        guard let query, !query.isEmpty else { return nil }
        let kept = query.split(separator: "&", omittingEmptySubsequences: false).filter { pair in
            !queryParameters.contains(pair.split(separator: "=", maxSplits: 1).first.map(String.init) ?? "")
        }
        return kept.isEmpty ? nil : kept.joined(separator: "&")
    }
}
