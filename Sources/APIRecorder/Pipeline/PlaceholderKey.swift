/// The key `api-recorder run` and the pytest plugin put in an SDK's key variable when none is set,
/// so that clients which refuse to construct without a key work against recordings.
///
/// No upstream accepts it, so the pipeline never forwards it: a request that would carry it
/// upstream gets a 401 `placeholder_api_key` at once, and nothing is recorded (a recorded 401
/// would replay as the provider's answer for ever).
public enum PlaceholderKey {
    public static let value = "api-recorder-placeholder-key"

    /// The header or query of a request to be forwarded that carries the placeholder, if any.
    static func carrier(headers: [(name: String, value: String)], query: String?) -> String? {
        if let header = headers.first(where: { $0.value.contains(value) }) { return "its \(header.name) header" }
        if let query, query.contains(value) { return "its query" }
        return nil
    }
}
