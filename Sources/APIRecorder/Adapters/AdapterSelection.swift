/// Which API rules apply to a route's (or a scope's) requests.
public enum AdapterKind: String, Sendable, CaseIterable {
    /// Chosen by path: `/api/...` as Ollama, `...:generateContent` and `...:streamGenerateContent`
    /// as Gemini, `/messages` and `/interactions` as plain HTTP, everything else as OpenAI.
    case auto
    /// OpenAI-compatible inference recordings.
    case openai
    /// Ollama's native API, NDJSON streams included.
    case ollama
    /// An MCP server over streamable HTTP: JSON-RPC requests recorded by method and params.
    case mcp
    /// Plain-HTTP recordings: HTTP tools (Tavily, any JSON API), Anthropic Messages, Gemini interactions.
    case http
    /// Gemini (Developer API and Vertex AI): content generation as the reference records
    /// `google-genai`, everything else as plain HTTP, errors in Google's shape.
    case gemini
}

/// Which provider rules apply to a request: one rule for every front end, so that the proxy and
/// the in-process hooks record the same request the same way.
package enum AdapterSelection {
    package static let openAI = OpenAIAdapter()
    package static let plainHTTP = PlainHTTPAdapter()
    package static let ollama = OllamaAdapter()
    package static let mcp = MCPAdapter()
    package static let gemini = GeminiAdapter()

    /// The adapter of `kind` for a request to `path` (below a proxy route, or the URL's whole path).
    package static func adapter(_ kind: AdapterKind, forPath path: String) -> any ProviderAdapter {
        switch kind {
        case .openai: return openAI
        case .http: return plainHTTP
        case .ollama: return ollama
        case .mcp: return mcp
        case .gemini: return gemini
        case .auto: return automatic(forPath: path)
        }
    }

    /// `/api/...` as Ollama, `...:generateContent` and `...:streamGenerateContent` as Gemini,
    /// `/messages` and `/interactions` as plain HTTP, everything else as OpenAI-compatible.
    package static func automatic(forPath path: String) -> any ProviderAdapter {
        if path.hasPrefix("/api/") { return ollama }
        if GeminiAdapter.handles(path: path) { return gemini }
        return path.hasSuffix("/messages") || path.contains("/interactions") ? plainHTTP : openAI
    }
}
