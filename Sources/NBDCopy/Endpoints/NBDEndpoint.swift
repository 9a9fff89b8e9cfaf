import NBD
import NIOConcurrencyHelpers
import NIOCore

/// An NBD export as one side of a copy.
///
/// `open` makes the first connection, which tells the export's size and flags; the first
/// lane reuses it, so a server that takes one client at a time is still usable.
public final class NBDEndpoint: CopyEndpoint {
    public let uri: NBDURI
    public let displayName: String
    public let info: NBDExportInfo
    private let probe: NIOLockedValueBox<NBDConnection?>
    /// Runs when the endpoint closes (a captive server's shutdown).
    private let onClose: (@Sendable () async -> Void)?

    /// The most connections nbdtop opens to one multi-conn export.
    public static let multiConnLimit = 64

    private init(uri: NBDURI, displayName: String, connection: NBDConnection, onClose: (@Sendable () async -> Void)?) {
        self.uri = uri
        self.displayName = displayName
        self.info = connection.info
        self.probe = NIOLockedValueBox(connection)
        self.onClose = onClose
    }

    /// Connects on `eventLoop` and learns the export's facts.
    public static func open(_ uri: NBDURI, displayName: String? = nil, on eventLoop: any EventLoop,
                            onClose: (@Sendable () async -> Void)? = nil) async throws -> NBDEndpoint {
        let connection = try await NBDConnection.connect(to: uri, group: eventLoop)
        return NBDEndpoint(uri: uri, displayName: displayName ?? uri.text, connection: connection, onClose: onClose)
    }

    public var size: UInt64? { info.size }
    public var maximumConnections: Int { info.canMultiConn ? Self.multiConnLimit : 1 }
    public var connectionLimitReason: String {
        info.canMultiConn ? "server advertises multi-conn" : "server does not advertise multi-conn"
    }
    public var constraints: BlockConstraints {
        BlockConstraints(minimum: info.minimumBlockSize, preferred: info.preferredBlockSize, maximum: info.maximumPayload)
    }
    public var isReadOnly: Bool { info.isReadOnly }
    public var canZero: Bool { info.canZero }
    public var canReportExtents: Bool { info.canBlockStatus }
    public var startsZeroed: Bool { false }
    public var isSequential: Bool { false }

    public func connect(on eventLoop: any EventLoop) async throws -> any EndpointConnection {
        let reused = probe.withLockedValue { connection -> NBDConnection? in
            guard let candidate = connection, candidate.eventLoop === eventLoop else { return nil }
            connection = nil
            return candidate
        }
        if let reused { return NBDEndpointConnection(reused, endpointName: displayName) }
        let connection = try await NBDConnection.connect(to: uri, group: eventLoop)
        return NBDEndpointConnection(connection, endpointName: displayName)
    }

    public func flush(on connection: any EndpointConnection) async throws {
        guard info.canFlush, let nbd = connection as? NBDEndpointConnection else { return }
        do {
            try await nbd.connection.flush()
        } catch {
            throw EndpointError(.request, "\(displayName): \(error)")
        }
    }

    public func close() async {
        if let unused = probe.withLockedValue({ connection -> NBDConnection? in
            defer { connection = nil }
            return connection
        }) {
            await unused.disconnect()
        }
        await onClose?()
    }
}

/// One NBD connection as a lane's endpoint connection.
final class NBDEndpointConnection: EndpointConnection {
    let connection: NBDConnection
    let endpointName: String

    init(_ connection: NBDConnection, endpointName: String) {
        self.connection = connection
        self.endpointName = endpointName
    }

    var eventLoop: any EventLoop { connection.eventLoop }
    var inFlightCount: Int { connection.inFlightCount }

    /// Server errors fail only the request; anything else means the connection is gone.
    private func endpointError(_ error: NBDError) -> EndpointError {
        switch error {
        case .serverError, .invalidRequest:
            return EndpointError(.request, "\(endpointName): \(error)")
        default:
            return EndpointError(.connection, "\(endpointName): \(error)")
        }
    }

    func read(offset: UInt64, length: UInt32, completion: @escaping (Result<[ReadPiece], EndpointError>) -> Void) {
        var pieces: [ReadPiece] = []
        connection.submit(.read(offset: offset, length: length), onChunk: { chunk in
            switch chunk {
            case .data(let offset, let bytes): pieces.append(.data(offset: offset, bytes: bytes))
            case .hole(let offset, let length): pieces.append(.zero(offset: offset, length: length))
            case .extents: break
            }
        }, onComplete: { result in
            switch result {
            case .success: completion(.success(pieces))
            case .failure(let error): completion(.failure(self.endpointError(error)))
            }
        })
    }

    func write(_ pieces: [ByteBuffer], at offset: UInt64, completion: @escaping (Result<Void, EndpointError>) -> Void) {
        connection.submit(.write(pieces: pieces, at: offset)) { result in
            completion(result.mapError(self.endpointError))
        }
    }

    func zero(offset: UInt64, length: UInt32, allocate: Bool, completion: @escaping (Result<Void, EndpointError>) -> Void) {
        connection.submit(.writeZeroes(offset: offset, length: length, flags: allocate ? .noHole : [])) { result in
            completion(result.mapError(self.endpointError))
        }
    }

    func extents(offset: UInt64, length: UInt32, completion: @escaping (Result<[ImageExtent], EndpointError>) -> Void) {
        var collected: [NBDExtent] = []
        let size = connection.info.size
        connection.submit(.blockStatus(offset: offset, length: length), onChunk: { chunk in
            if case .extents(let extents) = chunk { collected += extents }
        }, onComplete: { result in
            switch result {
            case .failure(let error):
                completion(.failure(self.endpointError(error)))
            case .success:
                var position = offset
                var extents: [ImageExtent] = []
                for extent in collected where position < size {
                    let length = min(UInt64(extent.length), size - position)
                    extents.append(ImageExtent(offset: position, length: length, isZero: extent.readsAsZero))
                    position += length
                }
                completion(.success(extents))
            }
        })
    }

    func close() -> EventLoopFuture<Void> {
        let connection = self.connection
        let promise = eventLoop.makePromise(of: Void.self)
        promise.completeWithTask { await connection.disconnect() }
        return promise.futureResult
    }

    func abort() {
        let connection = self.connection
        Task { await connection.abort(reason: "lane stopped") }
    }
}
