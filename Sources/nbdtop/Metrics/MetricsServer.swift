import NIOCore
import NIOHTTP1
import NIOPosix
#if canImport(Glibc)
import Glibc
#endif

/// `--metrics`: an HTTP/1 listener serving `MetricsRegistry`'s exposition at `/metrics`.
///
/// It runs on an event loop of its own, never on the copy's: scrapes, slow or many, only
/// ever wait on this loop, and a handler never touches the engine (frames are pushed into
/// the registry by whoever samples the transfer).
final class MetricsServer: Sendable {
    let registry: MetricsRegistry
    /// Where it listens, with the port the system chose for port 0.
    let address: MetricsAddress
    private let group: MultiThreadedEventLoopGroup
    private let listener: any Channel

    /// A scraper that stops reading does not hold more than this in unsent output.
    static let maximumPendingOutputBytes = 4 << 20

    private init(registry: MetricsRegistry, address: MetricsAddress, group: MultiThreadedEventLoopGroup, listener: any Channel) {
        self.registry = registry
        self.address = address
        self.group = group
        self.listener = listener
    }

    /// Listens at `address`; the error names the address and says why it failed.
    static func start(at address: MetricsAddress, registry: MetricsRegistry) async throws -> MetricsServer {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        do {
            let listener = try await ServerBootstrap(group: group)
                .serverChannelOption(.backlog, value: 64)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.writeBufferWaterMark,
                                    value: .init(low: maximumPendingOutputBytes / 4, high: maximumPendingOutputBytes))
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                        try channel.pipeline.syncOperations.addHandler(MetricsHTTPHandler(registry: registry))
                    }
                }
                .bind(host: address.host, port: address.port).get()
            let bound = MetricsAddress(host: address.host, port: listener.localAddress?.port ?? address.port)
            return MetricsServer(registry: registry, address: bound, group: group, listener: listener)
        } catch {
            try? await group.shutdownGracefully()
            throw MetricsServerError(message: "--metrics \(address): cannot listen: \(Self.reason(error))")
        }
    }

    /// Stops listening and ends the exporter's event loop.
    func close() async {
        try? await listener.close()
        try? await group.shutdownGracefully()
    }

    private static func reason(_ error: any Error) -> String {
        if let error = error as? IOError { return String(cString: strerror(error.errnoCode)) }
        return "\(error)"
    }
}

struct MetricsServerError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}
