import NBD
import NIOConcurrencyHelpers
import NIOCore

/// An NBD export as one side of a copy.
///
/// `open` makes the first connection, which tells the export's size and flags; the first
/// lane reuses it, so a server that takes one client at a time is still usable. Every later
/// connection (another lane, a reconnect) must find the same export, or it fails as fatal:
/// copying half an image from one export and half from another would be silent corruption.
public final class NBDEndpoint: CopyEndpoint {
    public let uri: NBDURI
    public let displayName: String
    public let info: NBDExportInfo
    private let probe: NIOLockedValueBox<NBDConnection?>
    /// The server nbdtop started for `[ CMD ]`, if it is one: it never comes back once gone.
    private let captive: CaptiveServer?

    /// The most connections nbdtop opens to one multi-conn export.
    public static let multiConnLimit = 64

    public var runsOnThisMachine: Bool { uri.transport.isOnThisMachine }

    private init(uri: NBDURI, displayName: String, connection: NBDConnection, captive: CaptiveServer?) {
        self.uri = uri
        self.displayName = displayName
        self.info = connection.info
        self.probe = NIOLockedValueBox(connection)
        self.captive = captive
    }

    /// Connects on `eventLoop` and learns the export's facts; `captive` is stopped when the
    /// endpoint closes.
    public static func open(_ uri: NBDURI, displayName: String? = nil, on eventLoop: any EventLoop,
                            captive: CaptiveServer? = nil) async throws -> NBDEndpoint {
        let connection = try await NBDConnection.connect(to: uri, group: eventLoop)
        return NBDEndpoint(uri: uri, displayName: displayName ?? uri.text, connection: connection, captive: captive)
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
    public var tls: NBDTLSSession? { info.tls }
    public var canZero: Bool { info.canZero }
    public var canReportExtents: Bool { info.canBlockStatus }
    public var startsZeroed: Bool { false }
    public var isSequential: Bool { false }
    public var canFlush: Bool { info.canFlush }
    public var canReconnect: Bool { captive == nil }

    public func connect(on eventLoop: any EventLoop) async throws -> NIOLoopBound<any EndpointConnection> {
        let reused = probe.withLockedValue { connection -> NBDConnection? in
            guard let candidate = connection, candidate.eventLoop === eventLoop else { return nil }
            connection = nil
            return candidate
        }
        let connection: NBDConnection
        if let reused {
            connection = reused
        } else {
            do {
                connection = try await NBDConnection.connect(to: uri, group: eventLoop)
            } catch {
                throw EndpointError(.connection, "\(displayName): \(error)")
            }
            if let change = ExportFacts(connection.info).change(from: ExportFacts(info)) {
                await connection.disconnect()
                throw EndpointError(.fatal, "\(displayName): the export changed since the copy started: \(change)")
            }
        }
        let name = displayName
        return try await eventLoop.bindConnection { NBDEndpointConnection(connection, endpointName: name) }
    }

    public func diagnose(_ error: EndpointError) async -> EndpointError {
        guard let captive, error.kind == .connection else { return error }
        guard let exited = await captive.exitAfterLostConnection() else { return error }
        return EndpointError(.fatal, exited, errno: error.errno)
    }

    public func close() async {
        if let unused = probe.withLockedValue({ connection -> NBDConnection? in
            defer { connection = nil }
            return connection
        }) {
            await unused.disconnect()
        }
        await captive?.stop()
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
    var closeFuture: EventLoopFuture<Void>? { connection.closeFuture }

    /// Server errors fail only the request (and keep the server's errno); anything else
    /// means the connection is gone.
    private func endpointError(_ error: NBDError) -> EndpointError {
        switch error {
        case .serverError(_, _, _, let errno, _):
            return EndpointError(.request, "\(endpointName): \(error)", errno: errno)
        case .invalidRequest:
            return EndpointError(.request, "\(endpointName): \(error)", errno: .einval)
        default:
            return EndpointError(.connection, "\(endpointName): \(error)")
        }
    }

    func flush(completion: @escaping (Result<Void, EndpointError>) -> Void) {
        connection.submit(.flush) { result in
            completion(result.mapError(self.endpointError))
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
