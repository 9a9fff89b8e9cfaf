import NIOCore

/// `null:`: a destination that discards everything, for measuring a source alone.
public final class NullEndpoint: CopyEndpoint {
    public let size: UInt64?

    public init(size: UInt64) {
        self.size = size
    }

    public var displayName: String { "null:" }
    public var maximumConnections: Int { 64 }
    public var connectionLimitReason: String { "null: takes any number of connections" }
    public var constraints: BlockConstraints { BlockConstraints(minimum: 1, preferred: 4096, maximum: 32 << 20) }
    public var isReadOnly: Bool { false }
    public var canZero: Bool { true }
    public var canReportExtents: Bool { false }
    /// Reads as zero: ranges known to be zero need no request at all.
    public var startsZeroed: Bool { true }
    public var isSequential: Bool { false }
    public var discardsWrites: Bool { true }

    /// Nothing is kept, so there is nothing to make durable.
    public var canFlush: Bool { false }

    public func connect(on eventLoop: any EventLoop) async throws -> NIOLoopBound<any EndpointConnection> {
        try await eventLoop.bindConnection { NullConnection(eventLoop: eventLoop) }
    }

    public func close() async {}
}

/// Completes every write and zero at once.
final class NullConnection: EndpointConnection {
    let eventLoop: any EventLoop

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    var inFlightCount: Int { 0 }

    func flush(completion: @escaping (Result<Void, EndpointError>) -> Void) {
        completion(.success(()))
    }

    func read(offset: UInt64, length: UInt32, completion: @escaping (Result<[ReadPiece], EndpointError>) -> Void) {
        completion(.failure(EndpointError(.request, "null: cannot be read")))
    }

    func write(_ pieces: [ByteBuffer], at offset: UInt64, completion: @escaping (Result<Void, EndpointError>) -> Void) {
        completion(.success(()))
    }

    func zero(offset: UInt64, length: UInt32, allocate: Bool, completion: @escaping (Result<Void, EndpointError>) -> Void) {
        completion(.success(()))
    }

    func extents(offset: UInt64, length: UInt32, completion: @escaping (Result<[ImageExtent], EndpointError>) -> Void) {
        completion(.success([ImageExtent(offset: offset, length: UInt64(length), isZero: true)]))
    }

    func close() -> EventLoopFuture<Void> { eventLoop.makeSucceededVoidFuture() }
    func abort() {}
}
