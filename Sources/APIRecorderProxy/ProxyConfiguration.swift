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
    /// `api-key`; Bearer when it sent none), and in each query parameter and body value under a
    /// credential name (``SecretRedaction``). Without one, the client's own credentials are forwarded.
    public var keyEnvironmentVariable: String?
    /// Which API rules apply to the route's requests.
    public var adapter: AdapterKind
    /// The provider preset the route came from (`--provider`), whose SDK variables a client
    /// environment sets; `nil` for a route of `--upstream` alone.
    public var preset: ProviderPreset?

    public init(
        name: String,
        upstream: String,
        recordedBase: String? = nil,
        keyEnvironmentVariable: String? = nil,
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

/// Everything `api-recorder serve` can be told.
public struct ProxyConfiguration: Sendable {
    public var host: String = "127.0.0.1"
    /// 0 picks a free port.
    public var port: Int = 8555
    public var mode: RecordingMode = .replay
    /// The recordings root.
    public var root: String = "."
    /// The fallback folders, each relative to the root unless absolute, in look-up order;
    /// recordings without a test folder are written to the first.
    public var fallbackDirectories: [String] = ["recordings"]
    /// The fallback folder recordings are written to (the first of ``fallbackDirectories``).
    public var fallbackDirectory: String {
        get { fallbackDirectories.first ?? "recordings" }
        set { fallbackDirectories = [newValue] }
    }
    /// Where the session report is written, as JSON, when the server stops (`nil`: nowhere).
    public var reportFile: String?
    /// Adds the session report to the one already at ``reportFile`` (under a lock) instead of
    /// replacing it: parallel test workers, each with its own proxy, share one file.
    public var mergesReport = false
    public var routes: [ProxyRoute] = []
    public var pace: ReplayPace = .none
    /// Request bodies above this size get a 413.
    public var maxBodyBytes: Int = 32 * 1024 * 1024
    /// Request heads (request line and headers) above this size get a 431 before anything is
    /// read or forwarded. Real upstreams refuse far smaller heads (8 to 32 KiB), and answer
    /// them before reading them whole, which the upstream client must never be asked to survive.
    public var maxHeaderBytes: Int = 32 * 1024
    /// Names besides the loopback ones that a request's `Host` may give (`--allow-host`): a
    /// container's or CI service's name. `NAME` allows any port, `NAME:PORT` that port only.
    public var allowedHosts: [String] = []
    /// Origins besides the loopback ones whose requests are answered (`--allow-origin`), such as
    /// `https://app.example.test`; every other `Origin`, and `Origin: null`, is refused.
    public var allowedOrigins: [String] = []
    /// How long an upstream may take to answer (to its response head, counted from when the
    /// request is sent), and to send each next body bytes, before the client gets a 504.
    public var upstreamTimeout: Duration = .seconds(300)
    /// How long connecting to an upstream may take; a refused connection fails at once.
    public var connectTimeout: Duration = .seconds(3)
    /// Requests in flight at once to one upstream host; more wait for a free connection (the wait
    /// does not count against ``upstreamTimeout``).
    public var upstreamConnections: Int = 64
    /// How long a client connection may stay idle (no request in progress, or a request that sends
    /// nothing) before the proxy closes it; `nil` never closes one.
    public var idleTimeout: Duration? = .seconds(60)
    /// How long a client may take to send a request's headers, from its first byte; `nil` waits for ever.
    public var headerTimeout: Duration? = .seconds(10)
    /// How long a graceful shutdown waits for in-flight exchanges before it cancels them (nothing
    /// partial is written).
    public var shutdownGrace: Duration = .seconds(10)
    /// The process environment, for `--upstream-key` variables.
    public var environment: [String: String] = [:]
    /// How many exchanges `GET /__recorder/journal` keeps (0: none).
    public var journalSize: Int = 1000

    public init() {}

    /// The route named `name`.
    public func route(named name: some StringProtocol) -> ProxyRoute? {
        routes.first { $0.name == name }
    }
}
