import APIRecorder
import AsyncHTTPClient
public import Hummingbird
public import Logging
import NIOCore
import ServiceLifecycle

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
    _ configuration: ProxyConfiguration, logger: Logger,
    onListening: @escaping @Sendable (Int) async -> Void = { _ in }
) -> some ApplicationProtocol {
    let store = RecordingStore(root: configuration.root, fallbackDirectory: configuration.fallbackDirectory, logger: logger)
    let recorder = Recorder(store: store, mode: configuration.mode, logger: logger)
    var clientConfiguration = HTTPClient.Configuration()
    clientConfiguration.timeout = .init(
        connect: .nanoseconds(Int64(configuration.connectTimeout.components.seconds) * 1_000_000_000),
        read: .nanoseconds(Int64(configuration.upstreamTimeout.components.seconds) * 1_000_000_000))
    clientConfiguration.decompression = .disabled
    let httpClient = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: clientConfiguration)
    let responder = ProxyResponder(
        configuration: configuration, recorder: recorder, httpClient: httpClient, testIdentity: TestIdentity(),
        logger: logger)
    var app = Application(
        responder: responder,
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: nil),
        onServerRunning: { channel in await onListening(channel.localAddress?.port ?? configuration.port) },
        logger: logger)
    app.addServices(HTTPClientService(client: httpClient), SessionReportService(recorder: recorder, logger: logger))
    return app
}

/// Shuts the upstream client down with the server.
struct HTTPClientService: Service {
    let client: HTTPClient

    func run() async throws {
        try? await gracefulShutdown()
        try await client.shutdown()
    }
}

/// Logs what the session did when the server stops: replayed, missed, recorded, unused.
struct SessionReportService: Service {
    let recorder: Recorder
    let logger: Logger

    func run() async throws {
        try? await gracefulShutdown()
        logger.notice("\(recorder.report().summary)")
    }
}
