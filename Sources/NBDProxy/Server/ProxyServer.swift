import Control
import NBD
import NIOCore
import NIOPosix
#if canImport(Glibc)
import Glibc
#endif

/// A listening NBD proxy: every client connection gets its own upstream connection, and
/// the bytes between them pass through unchanged while `RelayDecoder` measures them.
///
/// With `upstreamTLS` each upstream connection is encrypted by the proxy itself (see
/// `RelayPair`); clients still speak plaintext to the listener.
///
/// A client the upstream cannot be opened for is closed at once (`clientRefused`); a
/// connection either side breaks is closed alone, the others go on.
public final class ProxyServer: Sendable {
    public let configuration: ProxyConfiguration
    private let listener: any Channel
    private let registry: ClientRegistry
    private let coverage: CoverageRecorder
    private let startedAt: ContinuousClock.Instant

    /// The channels' write buffers: reading the other side stops above `high`.
    static let writeBufferWaterMark = ChannelOptions.Types.WriteBufferWaterMark(low: 256 << 10, high: 1 << 20)
    static let receiveAllocator = AdaptiveRecvByteBufferAllocator(minimum: 64 << 10, initial: 256 << 10, maximum: 1 << 20)

    private init(configuration: ProxyConfiguration, listener: any Channel, registry: ClientRegistry, coverage: CoverageRecorder) {
        self.configuration = configuration
        self.listener = listener
        self.registry = registry
        self.coverage = coverage
        self.startedAt = .now
    }

    /// Starts listening; `report` hears every `ProxyEvent`, on the connections' event loops.
    public static func start(_ configuration: ProxyConfiguration,
                             group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                             report: @escaping @Sendable (ProxyEvent) -> Void) async throws -> ProxyServer {
        let registry = ClientRegistry(maximumDeparted: configuration.maximumDepartedClients)
        let coverage = CoverageRecorder()
        let upstream = try upstreamAddress(configuration.upstream)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 128)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.writeBufferWaterMark, value: writeBufferWaterMark)
            .childChannelOption(.recvAllocator, value: receiveAllocator)
            .childChannelInitializer { channel in
                ClientIdentity.of(channel).flatMap { client in
                    relay(channel, client: client, upstream: upstream, configuration: configuration, registry: registry,
                          coverage: coverage, report: report)
                }
            }
        let listener: any Channel
        switch configuration.listen {
        case .unix(let path):
            try StaleSocket.removeIfUnanswered(path)
            listener = try await bootstrap.bind(unixDomainSocketPath: path, cleanupExistingSocketFile: false).get()
        case .tcp(let host, let port):
            listener = try await bootstrap.bind(host: host, port: port).get()
        }
        return ProxyServer(configuration: configuration, listener: listener, registry: registry, coverage: coverage)
    }

    private static func upstreamAddress(_ transport: NBDURI.Transport) throws -> SocketAddress {
        switch transport {
        case .unix(let path): return try SocketAddress(unixDomainSocketPath: path)
        case .tcp(let host, let port): return try SocketAddress.makeAddressResolvingHost(host, port: port)
        }
    }

    /// Opens `channel`'s upstream connection on the same event loop and joins the two.
    private static func relay(_ channel: any Channel, client: ClientIdentity, upstream: SocketAddress,
                              configuration: ProxyConfiguration, registry: ClientRegistry, coverage: CoverageRecorder,
                              report: @escaping @Sendable (ProxyEvent) -> Void) -> EventLoopFuture<Void> {
        let eventLoop = channel.eventLoop
        let id = registry.nextID()
        let figures = ClientFigures(id: id, client: client, stallThreshold: configuration.stallThreshold,
                                    slowThreshold: configuration.slowThreshold, now: .now())
        let pair = NIOLoopBound(RelayPair(figures: figures, eventLoop: eventLoop, upstreamTLS: configuration.upstreamTLS,
                                          coverage: coverage, report: report, onEnd: { registry.left($0) }),
                                eventLoop: eventLoop)
        return ClientBootstrap(group: eventLoop)
            .channelOption(.writeBufferWaterMark, value: writeBufferWaterMark)
            .channelOption(.recvAllocator, value: receiveAllocator)
            .channelInitializer { upstreamChannel in
                upstreamChannel.eventLoop.makeCompletedFuture {
                    try upstreamChannel.pipeline.syncOperations.addHandler(RelayHandler(pair: pair.value, side: .server))
                }
            }
            .connect(to: upstream)
            .flatMapErrorThrowing { error in
                report(.clientRefused(client: client, reason: "cannot connect to the upstream: \(error)"))
                throw error
            }
            .flatMapThrowing { _ in
                registry.add(id: id, ClientRegistry.Live(eventLoop: eventLoop, pair: pair))
                try channel.pipeline.syncOperations.addHandler(RelayHandler(pair: pair.value, side: .client))
            }
    }

    /// Where clients connect, as an NBD URI (for `$uri`).
    public var uri: String {
        switch configuration.listen {
        case .unix(let path): return NBDURI(transport: .unix(path: path)).canonical
        case .tcp(let host, _):
            return NBDURI(transport: .tcp(host: host, port: listener.localAddress?.port ?? 0)).canonical
        }
    }

    /// Client connections open now.
    public var activeClients: Int { registry.activeCount }

    public func snapshot() async -> ProxySnapshot {
        ProxySnapshot(elapsed: .now - startedAt, clients: await registry.snapshots(), coverage: coverage.snapshot)
    }

    /// Stops listening and closes every client connection.
    public func close() async {
        try? await listener.close()
        await registry.closeAll()
        if case .unix(let path) = configuration.listen { unlink(path) }
    }
}
