public import APIRecorder
import APIRecorderUpstream
public import Hummingbird
public import Logging
import NIOCore
import Prometheus
public import ServiceLifecycle
public import UnixSignals

/// The recorder a proxy of `configuration` answers with: its store, mode and session counts.
public func makeRecorder(_ configuration: ProxyConfiguration, logger: Logger) -> Recorder {
    let store = RecordingStore(
        root: configuration.root,
        fallbackDirectories: configuration.fallbackDirectories,
        logger: logger
    )
    return Recorder(store: store, mode: configuration.mode, journalSize: configuration.journalSize, logger: logger)
}

/// Builds the proxy application exactly as `api-recorder serve` runs it, so tests run what ships.
///
/// ```swift
/// var configuration = ProxyConfiguration()
/// configuration.port = 0
/// configuration.routes = [ProxyRoute(name: "openai", upstream: "https://api.openai.com/v1")]
/// let app = buildApplication(configuration, logger: logger) { port in print(port) }
/// try await app.runService()  // until SIGINT/SIGTERM, finishing in-flight recordings
/// ```
/// - Parameter onListening: called with the bound port once the server accepts connections.
public func buildApplication(
    _ configuration: ProxyConfiguration,
    logger: Logger,
    onListening: @escaping @Sendable (Int) async -> Void = { _ in }
) -> some ApplicationProtocol {
    buildApplication(
        configuration,
        recorder: makeRecorder(configuration, logger: logger),
        logger: logger,
        onListening: onListening
    )
}

/// Builds the proxy application around `recorder`, whose session report the caller can read
/// once the application has stopped (`api-recorder run` prints it).
public func buildApplication(
    _ configuration: ProxyConfiguration,
    recorder: Recorder,
    logger: Logger,
    onListening: @escaping @Sendable (Int) async -> Void = { _ in }
) -> some ApplicationProtocol {
    warnIfExposed(configuration, logger: logger)
    // A registry of this server's own, not the process-wide one: tests run many servers at once.
    let metrics = PrometheusCollectorRegistry()
    let pipeline = ExchangePipeline(
        recorder: recorder,
        pace: configuration.pace,
        upstreamTimeout: configuration.upstreamTimeout,
        metrics: ExchangeMetrics(factory: PrometheusMetricsFactory(registry: metrics)),
        logger: logger
    )
    let transport = HTTPClientTransport(
        configuration: .init(
            connections: configuration.upstreamConnections,
            connectTimeout: configuration.connectTimeout,
            readTimeout: configuration.upstreamTimeout
        )
    )
    let policy = CallerPolicy(
        allowedHosts: configuration.allowedHosts,
        allowedOrigins: configuration.allowedOrigins,
        listeningHost: configuration.host
    )
    let responder = ProxyResponder(
        configuration: configuration,
        pipeline: pipeline,
        transport: transport,
        testIdentity: TestIdentity(),
        tools: ToolEndpoint(timeout: configuration.upstreamTimeout),
        metrics: metrics,
        logger: logger,
        policy: policy
    )
    var app = Application(
        responder: responder,
        server: GuardedHTTP1Channel.builder(
            idleTimeout: configuration.idleTimeout,
            headerTimeout: configuration.headerTimeout,
            maxHeadBytes: configuration.maxHeaderBytes,
            policy: policy
        ),
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: nil),
        onServerRunning: { channel in await onListening(channel.localAddress?.port ?? configuration.port) },
        logger: logger
    )
    app.addServices(
        UpstreamService(transport: transport),
        SessionReportService(
            recorder: recorder,
            file: configuration.reportFile,
            merges: configuration.mergesReport,
            logger: logger
        )
    )
    return app
}

/// Says, on start, what a proxy listening beyond loopback exposes to the machines that reach it.
func warnIfExposed(_ configuration: ProxyConfiguration, logger: Logger) {
    guard !CallerPolicy.isLoopbackHost(configuration.host) else { return }
    let keyed = configuration.routes.filter { $0.keyEnvironmentVariable != nil }.map(\.name)
    let keys =
        keyed.isEmpty
        ? "the routes forward the callers' own keys"
        : "requests forwarded with the injected upstream keys of \(keyed.joined(separator: ", "))"
    logger.warning(
        "listening on \(configuration.host), beyond loopback: whoever reaches this address can use \(keys), read the recordings under \(configuration.root) (and write them in record modes), and drive the control endpoints. Requests must still name the proxy by a loopback address or an --allow-host name in their Host.",
        metadata: ["host": "\(configuration.host)", "allowed_hosts": "\(configuration.allowedHosts)"]
    )
}

/// Runs `app` until one of `signals`, or until a service of `alongside` returns, then shuts it
/// down gracefully: in-flight exchanges get `grace` to finish, after which they are cancelled
/// (nothing partial is written).
/// - Parameter alongside: services that end the proxy when they end: ``EndOfInputService``, or
///   the command `api-recorder run` runs.
public func runUntilSignalled(
    _ app: some ApplicationProtocol,
    grace: Duration,
    signals: [UnixSignal] = [.sigterm, .sigint],
    alongside: [any Service] = [],
    logger: Logger
) async throws {
    var configuration = ServiceGroupConfiguration(
        services: [.init(service: app)]
            + alongside.map { .init(service: $0, successTerminationBehavior: .gracefullyShutdownGroup) },
        gracefulShutdownSignals: signals,
        logger: logger
    )
    configuration.maximumGracefulShutdownDuration = grace
    try await ServiceGroup(configuration: configuration).run()
}

/// Shuts the upstream client down with the server.
struct UpstreamService: Service {
    let transport: HTTPClientTransport

    func run() async throws {
        try? await gracefulShutdown()
        try await transport.shutdown()
    }
}

/// Logs what the session did when the server stops (replayed, missed, recorded, unused), and
/// writes the whole report to `--report-file` (or adds it to the one there, with `--merge-report`).
struct SessionReportService: Service {
    let recorder: Recorder
    let file: String?
    let merges: Bool
    let logger: Logger

    func run() async throws {
        try? await gracefulShutdown()
        let report = recorder.report()
        logger.notice("\(report.summary)")
        guard let file else { return }
        do {
            if merges { try report.merge(into: file) } else { try report.write(to: file) }
            logger.info("session report written", metadata: ["path": "\(file)"])
        } catch {
            logger.error("could not write the session report", metadata: ["path": "\(file)", "reason": "\(error)"])
        }
    }
}
