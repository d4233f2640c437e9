// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "api-recorder",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "APIRecorder", targets: ["APIRecorder"]),
        .library(name: "PythonJSON", targets: ["PythonJSON"]),
        .library(name: "APIRecorderProxy", targets: ["APIRecorderProxy"]),
        .library(name: "APIRecorderTesting", targets: ["APIRecorderTesting"]),
        .executable(name: "api-recorder", targets: ["APIRecorderCLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/x-sheep/swift-property-based.git", from: "2.0.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.20.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.30.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.6.0"),
        .package(url: "https://github.com/apple/swift-openapi-runtime.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.1.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.80.0"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.24.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.0.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.0.0"),
    ],
    targets: [
        // JSON with Python's data model and Python-exact writers: the byte-level base of the format.
        .target(name: "PythonJSON"),
        // Request identity, recordings, and the recordings store.
        .target(
            name: "APIRecorder",
            dependencies: [
                "PythonJSON",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ]
        ),
        // The upstream transport over AsyncHTTPClient that the proxy and the in-process hooks share:
        // connection slots per host, timeouts counted from sending, failures classified.
        .target(
            name: "APIRecorderUpstream",
            dependencies: [
                "APIRecorder",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // The record/replay HTTP proxy: routes, key injection, and Hummingbird <-> pipeline translation.
        .target(
            name: "APIRecorderProxy",
            dependencies: [
                "APIRecorder",
                "APIRecorderUpstream",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        // In-process recording for Swift tests: the `.recording` trait, URLSession, AsyncHTTPClient
        // and OpenAPI hooks, and the tool API, over the same recorder and adapters as the proxy.
        .target(
            name: "APIRecorderTesting",
            dependencies: [
                "APIRecorder",
                "APIRecorderUpstream",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The `api-recorder` command: a thin layer over the libraries.
        .executableTarget(
            name: "APIRecorderCLI",
            dependencies: [
                "APIRecorder",
                "APIRecorderProxy",
                "APIRecorderUpstream",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The benchmarks behind scripts/bench-*.sh; an executable of the package, not a product,
        // so the shipped `api-recorder` carries none of it.
        .executableTarget(
            name: "APIRecorderBench",
            dependencies: [
                "APIRecorder",
                "APIRecorderProxy",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        // The fuzz targets (docs/fuzzing.md): entry points that check invariants on any bytes, shared
        // by the libFuzzer binary and FuzzCorpusTests. Not a product.
        .target(name: "FuzzTargets", dependencies: ["APIRecorder", "PythonJSON"]),
        // libFuzzer binary when built by scripts/fuzz.sh (`--sanitize=fuzzer -DFUZZING`), otherwise
        // the corpus runner. An executable of the package, not a product.
        .executableTarget(name: "APIRecorderFuzz", dependencies: ["FuzzTargets"]),
        // Helpers shared by the test targets: where ../shared is, how to run the built binary.
        .target(name: "TestSupport", path: "Tests/Support"),
        // Helpers for tests that run servers in process (the proxy, test upstreams).
        .target(
            name: "ServerTestSupport",
            dependencies: [
                "APIRecorder",
                "APIRecorderProxy",
                "TestSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Tests/ServerSupport"
        ),
        .testTarget(
            name: "PythonJSONTests",
            dependencies: [
                "PythonJSON",
                "TestSupport",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ]
        ),
        .testTarget(name: "APIRecorderTests", dependencies: ["APIRecorder", "FuzzTargets", "TestSupport"]),
        .testTarget(name: "APIRecorderCLITests", dependencies: ["APIRecorderCLI", "APIRecorder", "TestSupport"]),
        .testTarget(
            name: "APIRecorderTestingTests",
            dependencies: [
                "APIRecorderTesting",
                "ServerTestSupport",
                "APIRecorderProxy",
                "TestSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"),
            ],
            exclude: ["GeneratedChatClient/openapi.yaml", "GeneratedChatClient/README.md"]
        ),
        .testTarget(
            name: "APIRecorderProxyTests",
            dependencies: [
                "APIRecorderProxy",
                "ServerTestSupport",
                "TestSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ]
        ),
    ]
)

for target in package.targets {
    var settings = target.swiftSettings ?? []
    settings.append(.enableUpcomingFeature("ExistentialAny"))
    settings.append(.enableUpcomingFeature("InternalImportsByDefault"))
    settings.append(.enableUpcomingFeature("MemberImportVisibility"))
    target.swiftSettings = settings
}
