// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "nbdtop",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "NBD", targets: ["NBD"]),
        .library(name: "Telemetry", targets: ["Telemetry"]),
        .library(name: "NBDCopy", targets: ["NBDCopy"]),
        .library(name: "Control", targets: ["Control"]),
        .library(name: "NBDProxy", targets: ["NBDProxy"]),
        .executable(name: "nbdtop", targets: ["nbdtop"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        .target(
            name: "NBD",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
            ]
        ),
        // What a transfer reports: snapshots, events, the stall and slow-request detectors,
        // rate windows and the JSON-lines encoding. The copy engine, the proxy, the control
        // socket and the dashboard all speak it; it knows none of them.
        .target(
            name: "Telemetry",
            dependencies: [
                "NBD",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]
        ),
        .target(
            name: "NBDCopy",
            dependencies: [
                "NBD", "Telemetry", "CMalloc",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]
        ),
        .target(
            name: "NBDProxy",
            dependencies: [
                "NBD", "Telemetry", "Control",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "nbdtop",
            dependencies: [
                "NBD", "Telemetry", "NBDCopy", "NBDProxy", "Dashboard", "Control",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        .target(
            name: "Control",
            dependencies: [
                "Telemetry",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // No pkgConfig: its cflags are defines SwiftPM refuses with a warning on every
        // build; CNCurses.h sets what the wide API needs and the module map links it.
        .systemLibrary(name: "CNCurses"),
        // glibc's mallopt, for `HeapPolicy`.
        .systemLibrary(name: "CMalloc"),
        .target(
            name: "CNCursesShim",
            dependencies: ["CNCurses"]
        ),
        .target(
            name: "Dashboard",
            dependencies: ["Telemetry", "CNCurses", "CNCursesShim"]
        ),
        .target(
            name: "NBDTestSupport",
            dependencies: [
                "NBD",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Tests/NBDTestSupport"
        ),
        .testTarget(
            name: "NBDTests",
            dependencies: [
                "NBD", "NBDTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "TelemetryTests",
            dependencies: ["Telemetry", "NBD", .product(name: "NIOCore", package: "swift-nio")]
        ),
        .testTarget(
            name: "NBDCopyTests",
            dependencies: [
                "NBDCopy", "NBD", "NBDTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // libFuzzer targets (`make fuzz` builds them with -sanitize=fuzzer -DFUZZING);
        // ordinary builds make them replay the files named on their command line.
        .systemLibrary(name: "CLibFuzzer", path: "Tests/Fuzz/CLibFuzzer"),
        .target(name: "FuzzSupport", dependencies: ["CLibFuzzer"], path: "Tests/Fuzz/FuzzSupport"),
        .executableTarget(
            name: "NBDReplyFuzzer",
            dependencies: ["NBD", "FuzzSupport", .product(name: "NIOEmbedded", package: "swift-nio")],
            path: "Tests/Fuzz/NBDReplyFuzzer"
        ),
        .executableTarget(
            name: "NBDHandshakeFuzzer",
            dependencies: ["NBD", "FuzzSupport"],
            path: "Tests/Fuzz/NBDHandshakeFuzzer"
        ),
        // Counts page faults under the heap policy in a process of its own (HeapPolicyTests).
        .executableTarget(name: "HeapPolicyProbe", dependencies: ["NBDCopy"], path: "Tests/HeapPolicyProbe"),
        .testTarget(
            name: "NBDProxyTests",
            dependencies: ["NBDProxy"]
        ),
        .testTarget(
            name: "DashboardTests",
            dependencies: ["Dashboard", "Telemetry"],
            // Golden grids are read from the source tree by path, not bundled.
            exclude: ["Golden"]
        ),
        .testTarget(
            name: "ControlTests",
            dependencies: [
                "Control", "NBDTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]
        ),
        // The command line's own pure parts (the attach decoder against the encoder).
        .testTarget(
            name: "nbdtopTests",
            dependencies: ["nbdtop", "Telemetry", "NBDCopy", "Control"]
        ),
        .testTarget(
            name: "EndToEndTests",
            dependencies: ["NBDTestSupport"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
