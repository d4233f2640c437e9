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
}

/// The adapter a request is answered with, as one of the concrete adapters, so that the pipeline
/// runs specialised for it (a generic call through an existential would look up type metadata on
/// every request).
package enum SelectedAdapter: Sendable {
    case openAI(OpenAIAdapter)
    case plainHTTP(PlainHTTPAdapter)
    case ollama(OllamaAdapter)
    case mcp(MCPAdapter)
    case gemini(GeminiAdapter)

    /// An error body in the adapter's shape.
    package func errorBody(_ error: ExchangeError) -> [UInt8] {
        switch self {
        case .openAI(let adapter): return adapter.errorBody(error)
        case .plainHTTP(let adapter): return adapter.errorBody(error)
        case .ollama(let adapter): return adapter.errorBody(error)
        case .mcp(let adapter): return adapter.errorBody(error)
        case .gemini(let adapter): return adapter.errorBody(error)
        }
    }
}

extension AdapterSelection {
    /// The adapter of `kind` for a request to `path` (below a proxy route, or the URL's whole
    /// path). `auto` takes `/api/...` as Ollama, `...:generateContent` and
    /// `...:streamGenerateContent` as Gemini, `/messages` and `/interactions` as plain HTTP,
    /// everything else as OpenAI-compatible.
    package static func select(_ kind: AdapterKind, forPath path: String) -> SelectedAdapter {
        switch kind {
        case .openai: return .openAI(openAI)
        case .http: return .plainHTTP(plainHTTP)
        case .ollama: return .ollama(ollama)
        case .mcp: return .mcp(mcp)
        case .gemini: return .gemini(gemini)
        case .auto:
            // Every request of an `auto` route asks: compare bytes in place.
            let (isOllama, isPlain) = withUTF8Buffer(path) { bytes in
                (
                    bytes.starts(with: "/api/".utf8),
                    bytes.reversed().starts(with: "/messages".utf8.reversed()) || contains(bytes, "/interactions".utf8)
                )
            }
            if isOllama { return .ollama(ollama) }
            if GeminiAdapter.handles(path: path) { return .gemini(gemini) }
            return isPlain ? .plainHTTP(plainHTTP) : .openAI(openAI)
        }
    }
}

/// Whether `needle` occurs in `haystack`, byte for byte.
private func contains(_ haystack: UnsafeBufferPointer<UInt8>, _ needle: String.UTF8View) -> Bool {
    guard let first = needle.first, needle.count <= haystack.count else { return false }
    for start in 0...(haystack.count - needle.count) where haystack[start] == first {
        if haystack[start...].starts(with: needle) { return true }
    }
    return false
}

extension ExchangePipeline {
    /// Answers one HTTP exchange with the selected adapter (see ``respond(to:adapter:upstream:)``).
    package func respond(
        to request: ExchangeRequest,
        adapter: SelectedAdapter,
        upstream: Upstream
    ) async -> ExchangeResponse {
        switch adapter {
        case .openAI(let adapter): return await respond(to: request, adapter: adapter, upstream: upstream)
        case .plainHTTP(let adapter): return await respond(to: request, adapter: adapter, upstream: upstream)
        case .ollama(let adapter): return await respond(to: request, adapter: adapter, upstream: upstream)
        case .mcp(let adapter): return await respond(to: request, adapter: adapter, upstream: upstream)
        case .gemini(let adapter): return await respond(to: request, adapter: adapter, upstream: upstream)
        }
    }
}
