// swift-tools-version: 6.1
import PackageDescription

// An example agent whose tests record and replay their API calls with APIRecorderTesting.
// The library depends on Foundation only; the recorder is a test-only dependency.
let package = Package(
    name: "SwiftAgent",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "SwiftAgent", targets: ["SwiftAgent"])
    ],
    dependencies: [
        .package(name: "api-recorder", path: "../..")
    ],
    targets: [
        .target(name: "SwiftAgent"),
        .testTarget(
            name: "SwiftAgentTests",
            dependencies: [
                "SwiftAgent",
                .product(name: "APIRecorderTesting", package: "api-recorder"),
            ],
            // The recordings beside the tests are data read from the source tree, not resources.
            exclude: ["recordings"]
        ),
    ]
)
