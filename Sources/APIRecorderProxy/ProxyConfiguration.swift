public import APIRecorder

/// One upstream the proxy serves: requests to `/NAME/rest` go to `upstream + rest`.
public struct ProxyRoute: Sendable, Equatable {
    /// The first path component that selects the route.
    public var name: String
    /// The base URL requests are forwarded to (`https://api.openai.com/v1`).
    public var upstream: String
    /// The base URL recordings name (and so hash); by default the upstream.
    public var recordedBase: String
    /// An environment variable holding the key sent upstream in place of the client's: in each key
    /// header the client sent (`Authorization` as Bearer, `x-goog-api-key`, `x-api-key`,
    /// `api-key`; Bearer when it sent none) and in a `key=` query parameter. Without one, the
    /// client's own credentials are forwarded.
    public var keyEnvironmentVariable: String?
    /// Which API rules apply to the route's requests.
    public var adapter: AdapterKind

    /// The API rules a route's requests follow.
    public enum AdapterKind: String, Sendable, CaseIterable {
        /// Chosen by path: `/api/...` as Ollama, `...:generateContent` and
        /// `...:streamGenerateContent` as Gemini, `/messages` and `/interactions` as plain HTTP,
        /// everything else as OpenAI.
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

    public init(
        name: String, upstream: String, recordedBase: String? = nil, keyEnvironmentVariable: String? = nil,
        adapter: AdapterKind = .auto
    ) {
        self.adapter = adapter
        self.name = name
        self.upstream = Self.trimmingSlash(upstream)
        self.recordedBase = Self.trimmingSlash(recordedBase ?? upstream)
        self.keyEnvironmentVariable = keyEnvironmentVariable
    }

    /// Drops one trailing `/` so that bases join with paths cleanly, but keeps `scheme://`
    /// intact (`vertexai://` + `/generate_content` is the reference's `vertexai:///generate_content`).
    private static func trimmingSlash(_ url: String) -> String {
        url.hasSuffix("/") && !url.hasSuffix("://") ? String(url.dropLast()) : url
    }
}

/// How replayed streams are timed.
public enum ReplayPace: String, Sendable, CaseIterable {
    /// As fast as possible.
    case none
    /// With the gaps recorded between chunks (`chunk_offsets_ms`).
    case recorded
}

/// Everything `api-recorder serve` can be told.
public struct ProxyConfiguration: Sendable {
    public var host: String = "127.0.0.1"
    /// 0 picks a free port.
    public var port: Int = 8555
    public var mode: RecordingMode = .replay
    /// The recordings root.
    public var root: String = "."
    /// The fallback folder, relative to the root unless absolute.
    public var fallbackDirectory: String = "recordings"
    public var routes: [ProxyRoute] = []
    public var pace: ReplayPace = .none
    /// Request bodies above this size get a 413.
    public var maxBodyBytes: Int = 32 * 1024 * 1024
    /// How long an upstream may take to answer (to its first byte) before the client gets a 504.
    public var upstreamTimeout: Duration = .seconds(300)
    /// How long connecting to an upstream may take.
    public var connectTimeout: Duration = .seconds(10)
    /// The process environment, for `--upstream-key` variables.
    public var environment: [String: String] = [:]

    public init() {}

    /// The route named `name`.
    public func route(named name: some StringProtocol) -> ProxyRoute? {
        routes.first { $0.name == name }
    }
}
