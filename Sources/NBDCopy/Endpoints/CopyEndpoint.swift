import NIOCore
import NBD

/// One side of a copy: an NBD export, a file or block device, `null:`, a pipe, or a
/// captive server. The engine talks to every kind through this protocol only.
///
/// An endpoint is opened once (which learns its size and constraints) and then hands
/// out connections, one per lane. For kinds without real connections (files, `null:`)
/// a connection is a cheap handle.
public protocol CopyEndpoint: AnyObject, Sendable {
    /// The URI, path or command line, for messages.
    var displayName: String { get }
    /// Size in bytes; nil only for a pipe we read from, whose end we learn at EOF.
    var size: UInt64? { get }
    /// How many connections may be open at once (1 unless the endpoint allows multi-conn).
    var maximumConnections: Int { get }
    /// Why `maximumConnections` is what it is, for the UI (e.g. "server does not advertise multi-conn").
    var connectionLimitReason: String { get }
    /// Alignment and size limits for requests.
    var constraints: BlockConstraints { get }
    /// Whether writes are refused.
    var isReadOnly: Bool { get }
    /// Whether zeroing a range is cheaper than writing zeroes (NBD WRITE_ZEROES, hole punching).
    var canZero: Bool { get }
    /// Whether `extents` can tell holes and zero ranges apart from data.
    var canReportExtents: Bool { get }
    /// Whether the endpoint reads as zero before anything is written (`null:`, a new file).
    var startsZeroed: Bool { get }
    /// Whether requests must come strictly in order (pipes).
    var isSequential: Bool { get }
    /// Whether writing costs nothing (`null:`), so looking for zeroes to skip is wasted work.
    var discardsWrites: Bool { get }
    /// The TLS session of the connection `open` made; nil for plaintext and for files.
    var tls: NBDTLSSession? { get }
    /// Whether the endpoint's work runs on this machine's cores: a file, `null:`, a pipe, a
    /// captive server, an NBD server on a Unix socket or a loopback address. False for an
    /// NBD server elsewhere on the network.
    var runsOnThisMachine: Bool { get }

    /// Whether `EndpointConnection.flush` makes written data durable (NBD FLUSH, fsync);
    /// false for a server that does not offer FLUSH, `null:` and pipes.
    var canFlush: Bool { get }
    /// Whether a connection that broke can be opened again and see the same export (an NBD
    /// server that may restart); false for files, pipes, `null:` and captive servers.
    var canReconnect: Bool { get }

    /// Opens another connection on `eventLoop`, bound to it. The first call may reuse the
    /// connection that `open` made to learn the endpoint's facts. A connection that finds
    /// the endpoint changed (another size or flags) fails with a `.fatal` error.
    func connect(on eventLoop: any EventLoop) async throws -> NIOLoopBound<any EndpointConnection>

    /// Says what a lost connection means for the endpoint: the same error when it may come
    /// back, a `.fatal` one when it will not (a captive server that exited, with its status).
    func diagnose(_ error: EndpointError) async -> EndpointError

    /// Releases what the endpoint holds (captive server processes, files).
    func close() async

    /// A copy into this destination failed or stopped with every byte below
    /// `completedPrefix` acknowledged. Called at most once, possibly after `close`, from
    /// any thread; may block briefly. Leaves the endpoint as it is unless it says otherwise.
    func copyEndedIncomplete(completedPrefix: UInt64) -> IncompleteCopyOutcome
}

extension CopyEndpoint {
    public var discardsWrites: Bool { false }
    public var tls: NBDTLSSession? { nil }
    public var canReconnect: Bool { false }
    public func diagnose(_ error: EndpointError) async -> EndpointError { error }
    public func copyEndedIncomplete(completedPrefix: UInt64) -> IncompleteCopyOutcome { .leftAsIs }
}

extension EventLoop {
    /// Makes a connection on this loop and binds it there, so that it can be handed to the
    /// lane that will use it without ever being touched from another thread.
    func bindConnection(_ make: @escaping @Sendable () throws -> any EndpointConnection) async throws
        -> NIOLoopBound<any EndpointConnection> {
        try await submit { NIOLoopBound(try make(), eventLoop: self) }.get()
    }
}

/// One connection to an endpoint, used by one lane on its event loop.
///
/// Every method must be called on `eventLoop`, and calls its completion there exactly
/// once. Errors say whether only the request failed (`.request`: the server answered
/// with an error, a retry may help) or the connection is gone (`.connection`).
///
/// Connections keep mutable state without locks, so they are not `Sendable`: they are
/// made on their event loop and travel as `NIOLoopBound` (see `bindConnection`).
public protocol EndpointConnection: AnyObject {
    var eventLoop: any EventLoop { get }

    /// Reads `length` bytes at `offset`. Pieces may come out of order and may be holes.
    /// A pipe returns fewer bytes only at its end.
    func read(offset: UInt64, length: UInt32, completion: @escaping (Result<[ReadPiece], EndpointError>) -> Void)

    /// Writes the pieces back to back starting at `offset`.
    func write(_ pieces: [ByteBuffer], at offset: UInt64, completion: @escaping (Result<Void, EndpointError>) -> Void)

    /// Makes `length` bytes at `offset` read as zero; `allocate` asks to keep them allocated.
    func zero(offset: UInt64, length: UInt32, allocate: Bool, completion: @escaping (Result<Void, EndpointError>) -> Void)

    /// Describes the allocation of the range from `offset` (may cover less, never more
    /// than the endpoint). Only called when `canReportExtents`.
    func extents(offset: UInt64, length: UInt32, completion: @escaping (Result<[ImageExtent], EndpointError>) -> Void)

    /// Makes every write completed so far durable (NBD FLUSH, fsync). Only called when the
    /// endpoint's `canFlush`.
    func flush(completion: @escaping (Result<Void, EndpointError>) -> Void)

    /// Requests sent and not yet answered, as the transport sees them.
    var inFlightCount: Int { get }

    /// Ends politely once nothing is in flight (NBD_CMD_DISC); completes when closed.
    func close() -> EventLoopFuture<Void>

    /// Ends at once, failing what is in flight.
    func abort()

    /// Completes when the connection has closed for any reason, the peer's included; nil
    /// for endpoints that never close on their own (files, `null:`, pipes).
    var closeFuture: EventLoopFuture<Void>? { get }
}

extension EndpointConnection {
    public var closeFuture: EventLoopFuture<Void>? { nil }
}

/// Part of a READ: bytes, or a range that reads as zeroes.
public enum ReadPiece {
    case data(offset: UInt64, bytes: ByteBuffer)
    case zero(offset: UInt64, length: UInt32)
}

/// A range of the image and what is known about its contents.
public struct ImageExtent: Sendable, Equatable {
    public var offset: UInt64
    public var length: UInt64
    /// The range reads as zeroes.
    public var isZero: Bool

    public init(offset: UInt64, length: UInt64, isZero: Bool) {
        self.offset = offset
        self.length = length
        self.isZero = isZero
    }

    public var end: UInt64 { offset + length }
}

/// Alignment and size limits an endpoint puts on requests.
public struct BlockConstraints: Sendable, Equatable {
    /// Every request starts and (except at the end of the image) ends on a multiple of this.
    public var minimum: UInt32
    /// Efficient request granularity.
    public var preferred: UInt32
    /// Largest READ or WRITE.
    public var maximum: UInt32

    public init(minimum: UInt32 = 1, preferred: UInt32 = 4096, maximum: UInt32 = 32 << 20) {
        self.minimum = minimum
        self.preferred = preferred
        self.maximum = maximum
    }
}

extension CopyEndpoint {
    /// Every kind but NBD runs here: its reads and writes are this process's system calls.
    public var runsOnThisMachine: Bool { true }
}
