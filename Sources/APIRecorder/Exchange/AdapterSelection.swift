/// Which provider rules apply to a request, when nothing says so explicitly: one rule for every
/// front end, so that the proxy and the in-process hooks record the same request the same way.
public enum AdapterSelection {
    public static let openAI = OpenAIAdapter()
    public static let plainHTTP = PlainHTTPAdapter()
    public static let ollama = OllamaAdapter()
    public static let mcp = MCPAdapter()
    public static let gemini = GeminiAdapter()

    /// `/api/...` as Ollama, `...:generateContent` and `...:streamGenerateContent` as Gemini,
    /// `/messages` and `/interactions` as plain HTTP, everything else as OpenAI-compatible.
    /// - Parameter path: the request path (below a proxy route, or the URL's whole path).
    public static func automatic(forPath path: String) -> any ProviderAdapter {
        if path.hasPrefix("/api/") { return ollama }
        if GeminiAdapter.handles(path: path) { return gemini }
        return path.hasSuffix("/messages") || path.contains("/interactions") ? plainHTTP : openAI
    }
}
