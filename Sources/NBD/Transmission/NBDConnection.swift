import NIOCore
import NIOPosix

/// One negotiated connection to an NBD export, ready for requests.
///
/// The hot path is `submit(_:onChunk:onComplete:)`, called on `eventLoop` with callbacks
/// that run there too: no tasks, no locks, no copies of READ data. The `async` methods
/// are for control and tests.
public final class NBDConnection: Sendable {
    /// How to negotiate.
    public struct Options: Sendable {
        /// Ask for structured replies (needed for holes and block status).
        public var structuredReplies = true
        /// Metadata contexts to select; `base:allocation` by default.
        public var metaContexts = [NBDMetaContext.baseAllocation]
        /// Also list every context the server offers (for `nbdtop info`).
        public var listMetaContexts = false
        /// How long connecting and then the whole handshake may take.
        public var timeout: TimeAmount = .seconds(30)

        public init() {}
    }

    public let uri: NBDURI
    public let info: NBDExportInfo
    public let eventLoop: any EventLoop
    private let channel: any Channel
    private let handler: NIOLoopBound<NBDClientHandler>

    private init(uri: NBDURI, info: NBDExportInfo, channel: any Channel, handler: NIOLoopBound<NBDClientHandler>) {
        self.uri = uri
        self.info = info
        self.channel = channel
        self.eventLoop = channel.eventLoop
        self.handler = handler
    }

    // MARK: Opening

    /// Connects to `uri` and negotiates; throws `NBDError`.
    public static func connect(to uri: NBDURI, options: Options = Options(),
                               group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> NBDConnection {
        let tls = uri.tls ? try await TLSClientSetup.make(for: uri) : nil
        let (channel, handler) = try await open(uri, options: options, group: group)
        do {
            let transport = ChannelNegotiationTransport(channel: channel, handler: handler, tls: tls)
            let info = try await Negotiator(transport: transport, uri: uri).negotiateExport(options: options)
            let contextID = info.metaContexts[NBDMetaContext.baseAllocation]
            let structured = info.structuredReplies
            try await channel.eventLoop.submit {
                try handler.value.beginTransmission(structuredReplies: structured, baseAllocationContextID: contextID)
            }.get()
            return NBDConnection(uri: uri, info: info, channel: channel, handler: handler)
        } catch {
            throw await abandon(channel, handler: handler, error: error)
        }
    }

    /// Lists the exports a server offers (`NBD_OPT_LIST`); throws `NBDError`.
    public static func listExports(at uri: NBDURI, options: Options = Options(),
                                   group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> [NBDExportListing] {
        try await negotiateAndClose(uri, tls: uri.tls ? try await TLSClientSetup.make(for: uri) : nil,
                                    options: options, group: group) { try await $0.negotiateListing() }
    }

    /// Connects to the `nbds` server `uri` names, starts TLS and ends the handshake without
    /// choosing an export: whether TLS to it works, for a relay. Throws `NBDError`.
    public static func checkTLS(at uri: NBDURI, options: Options = Options(),
                                group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> NBDTLSSession {
        try await negotiateAndClose(uri, tls: try await TLSClientSetup.make(for: uri), options: options, group: group) {
            try await $0.negotiateTLSOnly()
        }
    }

    /// Connects, runs one negotiation that chooses no export, and closes.
    private static func negotiateAndClose<Result: Sendable>(
        _ uri: NBDURI, tls: TLSClientSetup?, options: Options, group: any EventLoopGroup,
        _ negotiation: (Negotiator) async throws -> Result
    ) async throws -> Result {
        let (channel, handler) = try await open(uri, options: options, group: group)
        do {
            let transport = ChannelNegotiationTransport(channel: channel, handler: handler, tls: tls)
            let result = try await negotiation(Negotiator(transport: transport, uri: uri))
            try? await channel.close()
            return result
        } catch {
            throw await abandon(channel, handler: handler, error: error)
        }
    }

    private static func open(_ uri: NBDURI, options: Options, group: any EventLoopGroup) async throws -> (any Channel, NIOLoopBound<NBDClientHandler>) {
        let (channel, handler) = try await Connector.open(uri, group: group, timeout: options.timeout)
        let timeout = options.timeout
        try await channel.eventLoop.submit {
            handler.value.armNegotiationTimeout(timeout, eventLoop: channel.eventLoop)
        }.get()
        return (channel, handler)
    }

    /// Closes a channel whose handshake failed; returns the error that explains it best.
    private static func abandon(_ channel: any Channel, handler: NIOLoopBound<NBDClientHandler>, error: any Error) async -> NBDError {
        let reason = try? await channel.eventLoop.submit { handler.value.closeReason }.get()
        try? await channel.close()
        if let nbdError = error as? NBDError { return nbdError }
        return reason ?? .connectionClosed("\(error)")
    }

    // MARK: Requests

    /// Sends a request. Call on `eventLoop`; the callbacks run there.
    ///
    /// `onChunk` gets READ data as slices of the receive buffer as they arrive (in any
    /// order for structured replies), holes, and block status extents. `onComplete` runs
    /// exactly once; a request the export does not allow fails at once, without I/O.
    public func submit(_ request: NBDRequest, onChunk: ((NBDReplyChunk) -> Void)? = nil,
                       onComplete: @escaping (Result<Void, NBDError>) -> Void) {
        eventLoop.preconditionInEventLoop()
        do {
            try info.validate(request)
        } catch {
            onComplete(.failure(error))
            return
        }
        handler.value.send(request, onChunk: onChunk, onComplete: onComplete)
    }

    /// Requests sent on this connection and not yet answered. Call on `eventLoop`.
    public var inFlightCount: Int { handler.value.inFlightCount }

    /// Sends `request` and gathers its reply chunks; throws `NBDError`.
    public func perform(_ request: NBDRequest) async throws -> [NBDReplyChunk] {
        let loop = eventLoop
        return try await loop.flatSubmit { () -> EventLoopFuture<[NBDReplyChunk]> in
            let promise = loop.makePromise(of: [NBDReplyChunk].self)
            var chunks: [NBDReplyChunk] = []
            self.submit(request, onChunk: { chunks.append($0) }, onComplete: { result in
                promise.completeWith(result.map { chunks }.mapError { $0 as any Error })
            })
            return promise.futureResult
        }.get()
    }

    /// Reads `length` bytes at `offset`, holes filled with zeroes.
    public func read(offset: UInt64, length: UInt32, flags: NBDCommandFlags = []) async throws -> ByteBuffer {
        let chunks = try await perform(.read(offset: offset, length: length, flags: flags))
        var result = channel.allocator.buffer(capacity: Int(length))
        result.writeRepeatingByte(0, count: Int(length))
        for case .data(let chunkOffset, let bytes) in chunks {
            result.setBuffer(bytes, at: Int(chunkOffset - offset))
        }
        return result
    }

    public func write(_ data: ByteBuffer, at offset: UInt64, flags: NBDCommandFlags = []) async throws {
        _ = try await perform(.write(data, at: offset, flags: flags))
    }

    public func writeZeroes(offset: UInt64, length: UInt32, flags: NBDCommandFlags = []) async throws {
        _ = try await perform(.writeZeroes(offset: offset, length: length, flags: flags))
    }

    public func trim(offset: UInt64, length: UInt32, flags: NBDCommandFlags = []) async throws {
        _ = try await perform(.trim(offset: offset, length: length, flags: flags))
    }

    public func flush() async throws {
        _ = try await perform(.flush)
    }

    /// The `base:allocation` extents from `offset`, as the server reports them.
    public func blockStatus(offset: UInt64, length: UInt32, flags: NBDCommandFlags = []) async throws -> [NBDExtent] {
        let chunks = try await perform(.blockStatus(offset: offset, length: length, flags: flags))
        var extents: [NBDExtent] = []
        for case .extents(let more) in chunks { extents += more }
        return extents
    }

    /// Waits for requests in flight, then says goodbye with `NBD_CMD_DISC` and closes.
    public func disconnect() async {
        let handler = self.handler
        let loop = eventLoop
        try? await loop.flatSubmit { handler.value.disconnect(eventLoop: loop) }.get()
        try? await channel.closeFuture.get()
    }

    /// Closes at once, failing anything in flight with `reason`.
    public func abort(reason: String = "closed by the client") async {
        let handler = self.handler
        try? await eventLoop.submit { handler.value.fail(.connectionClosed(reason)) }.get()
        try? await channel.closeFuture.get()
    }

    /// Completes when the connection has closed, for whatever reason.
    public var closeFuture: EventLoopFuture<Void> { channel.closeFuture }

    /// Why the connection ended, once it has. Call on `eventLoop`.
    public var closeReason: NBDError? { handler.value.closeReason }
}
