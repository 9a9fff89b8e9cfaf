import NBD
import DequeModule
import NIOCore
import NIOPosix
import Synchronization
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// `-` on the command line: standard input as a source, standard output as a destination.
///
/// A pipe is read and written in order, so it allows one connection at a time
/// (`isSequential`). As a source its size is unknown until the end: `read` must be asked
/// for the stream in order, returns fewer bytes than asked only at the end, and nothing
/// (`[]`) after it. As a destination, writes may arrive out of order (several requests
/// in flight); they are held until the bytes before them have arrived, then written in
/// order, and each completes when its bytes are in the pipe. Zero ranges are written as
/// zero bytes.
///
/// The blocking `read`/`write` calls run on a thread pool, one at a time. The position in
/// the stream belongs to the endpoint, so a connection that closes politely can be
/// followed by another that goes on where it stopped.
///
/// Any descriptor works (tests use a `pipe()` pair): `init(readingFrom:…)` and
/// `init(writingTo:…)`. Standard input and output are never closed by `close()`.
///
/// Writing to a pipe whose reader has gone raises SIGPIPE, which ends the process unless
/// the program ignores it (then the write fails with EPIPE, reported as a connection error).
public final class PipeEndpoint: CopyEndpoint {
    public enum Direction: Sendable, Equatable {
        case source
        case destination
    }

    public let direction: Direction
    public let displayName: String
    public let size: UInt64?
    public var maximumConnections: Int { 1 }
    public var connectionLimitReason: String { "a pipe is read and written in order" }
    public var constraints: BlockConstraints { BlockConstraints(minimum: 1, preferred: 64 << 10, maximum: 32 << 20) }
    public var isReadOnly: Bool { direction == .source }
    public var canZero: Bool { false }
    public var canReportExtents: Bool { false }
    public var startsZeroed: Bool { false }
    public var isSequential: Bool { true }

    let descriptor: SharedDescriptor
    let threadPool: NIOThreadPool
    private let stream = Mutex(StreamState())

    /// Where the stream is, between connections.
    struct StreamState {
        var connected = false
        /// The offset the next connection goes on from.
        var position: UInt64 = 0
        /// Where the input ended, once a read reached the end.
        var end: UInt64?
        /// Why the stream cannot go on (bytes were lost when a connection was aborted).
        var broken: String?
    }

    /// Standard input (fd 0) as a source of unknown size.
    public static func stdin(threadPool: NIOThreadPool = .singleton) -> PipeEndpoint {
        PipeEndpoint(readingFrom: STDIN_FILENO, name: "standard input", threadPool: threadPool)
    }

    /// Standard output (fd 1) as the destination of a `size`-byte image (nil when unknown).
    public static func stdout(size: UInt64?, threadPool: NIOThreadPool = .singleton) -> PipeEndpoint {
        PipeEndpoint(writingTo: STDOUT_FILENO, size: size, name: "standard output", threadPool: threadPool)
    }

    /// A source reading `fd` in order; `closesDescriptor` makes `close()` close it.
    public init(readingFrom fd: Int32, name: String, closesDescriptor: Bool = false,
                threadPool: NIOThreadPool = .singleton) {
        direction = .source
        displayName = name
        size = nil
        descriptor = SharedDescriptor(fd, ownsDescriptor: closesDescriptor)
        self.threadPool = threadPool
    }

    /// A destination writing `fd` in order; `closesDescriptor` makes `close()` close it.
    public init(writingTo fd: Int32, size: UInt64?, name: String, closesDescriptor: Bool = false,
                threadPool: NIOThreadPool = .singleton) {
        direction = .destination
        displayName = name
        self.size = size
        descriptor = SharedDescriptor(fd, ownsDescriptor: closesDescriptor)
        self.threadPool = threadPool
    }

    /// Where the input ended, as soon as a read has reached its end (sources only): the
    /// size of the image, which `size` (nil for a source pipe) does not tell.
    public var endOffset: UInt64? { stream.withLock { $0.end } }

    /// Bytes read or written so far by connections that have closed.
    public var position: UInt64 { stream.withLock { $0.position } }

    public func connect(on eventLoop: any EventLoop) async throws -> NIOLoopBound<any EndpointConnection> {
        let state = try stream.withLock { state throws(EndpointError) -> StreamState in
            if let broken = state.broken {
                throw EndpointError(.connection, "\(displayName): \(broken)")
            }
            guard !state.connected else {
                throw EndpointError(.connection, "\(displayName): a pipe allows only one connection at a time")
            }
            state.connected = true
            return state
        }
        guard !descriptor.isClosed else {
            release(position: state.position, end: state.end, broken: nil)
            throw EndpointError(.connection, "\(displayName): closed")
        }
        let (position, end) = (state.position, state.end)
        switch direction {
        case .source:
            return try await eventLoop.bindConnection {
                PipeReaderConnection(endpoint: self, eventLoop: eventLoop, position: position, end: end)
            }
        case .destination:
            return try await eventLoop.bindConnection {
                PipeWriterConnection(endpoint: self, eventLoop: eventLoop, position: position)
            }
        }
    }

    /// A pipe keeps nothing to flush; standard output redirected to a regular file does.
    public var canFlush: Bool {
        guard direction == .destination else { return false }
        var status = stat()
        return fstat(descriptor.rawValue, &status) == 0 && status.st_mode & S_IFMT == S_IFREG
    }

    /// fsync of standard output when it is a regular file, on the thread pool.
    func synchronize(on eventLoop: any EventLoop, completion: @escaping (Result<Void, EndpointError>) -> Void) {
        let descriptor = self.descriptor
        let name = displayName
        let done = threadPool.runIfActive(eventLoop: eventLoop) {
            try descriptor.use(closedError: { EndpointError(.connection, "\(name): closed") }) { fd in
                while fsync(fd.rawValue) != 0 {
                    let code = errno
                    if code == EINTR { continue }
                    throw EndpointError(.request, "\(name): fsync failed: \(systemErrorText(code))",
                                        errno: NBDErrno(rawValue: UInt32(bitPattern: code)))
                }
            }
        }
        done.assumeIsolated().whenComplete { result in
            completion(result.mapError { $0 as? EndpointError ?? EndpointError(.connection, "\(name): cannot run fsync: \($0)") })
        }
    }

    /// Closes the descriptor (not stdin or stdout) once nothing is using it.
    public func close() async {
        descriptor.close()
    }

    /// A connection ended: the next one goes on from `position`.
    func release(position: UInt64, end: UInt64?, broken: String?) {
        stream.withLock { state in
            state.connected = false
            state.position = position
            if let end { state.end = end }
            if let broken, state.broken == nil { state.broken = broken }
        }
    }

    /// A read met the end of the input.
    func reachedEnd(at end: UInt64) {
        stream.withLock { $0.end = end }
    }

    func closedError() -> EndpointError {
        EndpointError(.connection, "\(displayName): closed")
    }
}

/// The one connection to a pipe source: reads run one at a time, in order.
final class PipeReaderConnection: EndpointConnection {
    private struct QueuedRead {
        var offset: UInt64
        var length: UInt32
        var completion: (Result<[ReadPiece], EndpointError>) -> Void
    }

    let endpoint: PipeEndpoint
    let eventLoop: any EventLoop
    /// Where the next request must start.
    private var nextOffset: UInt64
    /// Where the input ended, once known.
    private var end: UInt64?
    private var queue = Deque<QueuedRead>()
    /// The read running on the thread pool.
    private var active: (token: UInt64, read: QueuedRead)?
    private var nextToken: UInt64 = 0
    private var state = ConnectionLifecycle.open

    init(endpoint: PipeEndpoint, eventLoop: any EventLoop, position: UInt64, end: UInt64?) {
        self.endpoint = endpoint
        self.eventLoop = eventLoop
        self.nextOffset = position
        self.end = end
    }

    var inFlightCount: Int { queue.count + (active == nil ? 0 : 1) }

    func flush(completion: @escaping (Result<Void, EndpointError>) -> Void) {
        completion(.success(()))
    }

    private var name: String { endpoint.displayName }

    func read(offset: UInt64, length: UInt32, completion: @escaping (Result<[ReadPiece], EndpointError>) -> Void) {
        eventLoop.preconditionInEventLoop()
        guard case .open = state else {
            completion(.failure(EndpointError(.connection, "\(name): the connection is closed")))
            return
        }
        if let end, offset >= end {
            completion(.success([]))
            return
        }
        guard offset == nextOffset else {
            completion(.failure(EndpointError(.request, "\(name): read at offset \(offset) is out of order: "
                                              + "a pipe is read in order, and the next read starts at offset \(nextOffset)")))
            return
        }
        nextOffset += UInt64(length)
        queue.append(QueuedRead(offset: offset, length: length, completion: completion))
        startNext()
    }

    func write(_ pieces: [ByteBuffer], at offset: UInt64, completion: @escaping (Result<Void, EndpointError>) -> Void) {
        completion(.failure(EndpointError(.request, "\(name): write at offset \(offset): a source pipe cannot be written")))
    }

    func zero(offset: UInt64, length: UInt32, allocate: Bool, completion: @escaping (Result<Void, EndpointError>) -> Void) {
        completion(.failure(EndpointError(.request, "\(name): zero at offset \(offset): a source pipe cannot be written")))
    }

    func extents(offset: UInt64, length: UInt32, completion: @escaping (Result<[ImageExtent], EndpointError>) -> Void) {
        completion(.failure(EndpointError(.request, "\(name): a pipe cannot report extents")))
    }

    private func startNext() {
        guard active == nil else { return }
        while let next = queue.popFirst() {
            if let end, next.offset >= end {
                next.completion(.success([]))
                continue
            }
            let token = nextToken
            nextToken &+= 1
            active = (token, next)
            let descriptor = endpoint.descriptor
            let name = self.name
            let count = Int(next.length), offset = next.offset
            endpoint.threadPool.runIfActive(eventLoop: eventLoop) {
                try PipeIO.read(descriptor, count: count, at: offset, name: name,
                                closedError: { EndpointError(.connection, "\(name): closed") })
            }.assumeIsolated().whenComplete { result in
                self.finish(token: token, result: result)
            }
            return
        }
        finishClosingIfIdle()
    }

    private func finish(token: UInt64, result: Result<ByteBuffer, any Error>) {
        guard let (activeToken, read) = active, activeToken == token else { return }  // aborted
        active = nil
        switch result {
        case .success(let bytes):
            if bytes.readableBytes < Int(read.length) {
                let end = read.offset + UInt64(bytes.readableBytes)
                self.end = end
                endpoint.reachedEnd(at: end)
            }
            read.completion(.success(bytes.readableBytes > 0 ? [.data(offset: read.offset, bytes: bytes)] : []))
            startNext()
        case .failure(let error):
            // How much of the stream the failed read used up is unknown: nothing can follow.
            let failure = error as? EndpointError
                ?? EndpointError(.connection, "\(name): cannot run blocking I/O: \(error)")
            let reason = "reading failed at offset \(read.offset): \(failure.message)"
            failEverything(EndpointError(.connection, failure.message), first: read)
            close(position: read.offset, broken: reason)
        }
    }

    private func failEverything(_ error: EndpointError, first: QueuedRead?) {
        let queued = queue
        queue.removeAll()
        first?.completion(.failure(error))
        for read in queued { read.completion(.failure(error)) }
    }

    func close() -> EventLoopFuture<Void> {
        eventLoop.preconditionInEventLoop()
        let (closed, started) = state.beginClosing(on: eventLoop)
        if started { finishClosingIfIdle() }
        return closed
    }

    func abort() {
        eventLoop.preconditionInEventLoop()
        guard !isClosed else { return }
        let running = active?.read
        active = nil
        let position = running?.offset ?? queue.first?.offset ?? nextOffset
        failEverything(EndpointError(.connection, "\(name): connection aborted"), first: running)
        close(position: position, broken: running.map {
            "bytes from offset \($0.offset) were read and dropped when a connection was aborted"
        })
    }

    private var isClosed: Bool { state.isClosed }

    private func finishClosingIfIdle() {
        guard case .closing = state, active == nil, queue.isEmpty else { return }
        close(position: nextOffset, broken: nil)
    }

    /// Hands the stream back to the endpoint and completes a pending `close()`.
    private func close(position: UInt64, broken: String?) {
        guard !state.isClosed else { return }
        let closing = state.markClosed()
        endpoint.release(position: min(position, end ?? position), end: end, broken: broken)
        closing?.succeed()
    }
}

/// What one write puts into the pipe.
enum PipeChunk: Sendable {
    case bytes([ByteBuffer])
    case zeros(UInt64)
}

/// The one connection to a pipe destination: writes are held until they are next in the
/// stream, then written in order, a batch at a time.
final class PipeWriterConnection: EndpointConnection {
    private struct QueuedWrite {
        var offset: UInt64
        var length: UInt64
        var chunk: PipeChunk
        var completion: (Result<Void, EndpointError>) -> Void
    }

    /// A batch written in one go on the thread pool stops growing at this many bytes.
    static let batchBytes: UInt64 = 32 << 20

    let endpoint: PipeEndpoint
    let eventLoop: any EventLoop
    /// The offset the next byte handed to the pipe has: everything before it is written
    /// or being written.
    private var streamOffset: UInt64
    /// Writes that arrived before the bytes in front of them, by offset.
    private var waiting: [UInt64: QueuedWrite] = [:]
    /// The batch being written on the thread pool.
    private var active: (token: UInt64, writes: [QueuedWrite])?
    private var nextToken: UInt64 = 0
    private var broken: EndpointError?
    private var state = ConnectionLifecycle.open

    init(endpoint: PipeEndpoint, eventLoop: any EventLoop, position: UInt64) {
        self.endpoint = endpoint
        self.eventLoop = eventLoop
        self.streamOffset = position
    }

    var inFlightCount: Int { waiting.count + (active?.writes.count ?? 0) }

    func flush(completion: @escaping (Result<Void, EndpointError>) -> Void) {
        endpoint.synchronize(on: eventLoop, completion: completion)
    }

    private var name: String { endpoint.displayName }

    func read(offset: UInt64, length: UInt32, completion: @escaping (Result<[ReadPiece], EndpointError>) -> Void) {
        completion(.failure(EndpointError(.request, "\(name): read at offset \(offset): a destination pipe cannot be read")))
    }

    func extents(offset: UInt64, length: UInt32, completion: @escaping (Result<[ImageExtent], EndpointError>) -> Void) {
        completion(.failure(EndpointError(.request, "\(name): a pipe cannot report extents")))
    }

    func write(_ pieces: [ByteBuffer], at offset: UInt64, completion: @escaping (Result<Void, EndpointError>) -> Void) {
        let length = pieces.reduce(UInt64(0)) { $0 + UInt64($1.readableBytes) }
        enqueue(QueuedWrite(offset: offset, length: length, chunk: .bytes(pieces), completion: completion))
    }

    /// Writes `length` zero bytes (a pipe cannot skip).
    func zero(offset: UInt64, length: UInt32, allocate: Bool, completion: @escaping (Result<Void, EndpointError>) -> Void) {
        enqueue(QueuedWrite(offset: offset, length: UInt64(length), chunk: .zeros(UInt64(length)), completion: completion))
    }

    private func enqueue(_ write: QueuedWrite) {
        eventLoop.preconditionInEventLoop()
        guard case .open = state else {
            write.completion(.failure(EndpointError(.connection, "\(name): the connection is closed")))
            return
        }
        if let broken {
            write.completion(.failure(broken))
            return
        }
        guard write.offset >= streamOffset, waiting[write.offset] == nil else {
            write.completion(.failure(EndpointError(.request, "\(name): write at offset \(write.offset) overlaps bytes "
                                                    + "already written (a pipe is written once, in order)")))
            return
        }
        guard write.length > 0 else {
            write.completion(.success(()))
            return
        }
        waiting[write.offset] = write
        startNext()
    }

    /// Starts writing the writes that are next in the stream, if nothing is being written.
    private func startNext() {
        guard active == nil, broken == nil else { return }
        var batch: [QueuedWrite] = []
        var position = streamOffset
        var bytes: UInt64 = 0
        while bytes < Self.batchBytes, let next = waiting.removeValue(forKey: position) {
            batch.append(next)
            position += next.length
            bytes += next.length
        }
        guard !batch.isEmpty else {
            finishClosingIfIdle()
            return
        }
        let token = nextToken
        nextToken &+= 1
        active = (token, batch)
        let firstOffset = streamOffset
        streamOffset = position
        let chunks = batch.map(\.chunk)
        let descriptor = endpoint.descriptor
        let name = self.name
        endpoint.threadPool.runIfActive(eventLoop: eventLoop) {
            try PipeIO.write(descriptor, chunks, at: firstOffset, name: name,
                             closedError: { EndpointError(.connection, "\(name): closed") })
        }.assumeIsolated().whenComplete { result in
            self.finish(token: token, result: result)
        }
    }

    private func finish(token: UInt64, result: Result<Void, any Error>) {
        guard let (activeToken, writes) = active, activeToken == token else { return }  // aborted
        active = nil
        switch result {
        case .success:
            for write in writes { write.completion(.success(())) }
            startNext()
        case .failure(let error):
            // A broken pipe stays broken: fail this batch and everything held back.
            let message = (error as? EndpointError)?.message ?? "\(name): cannot run blocking I/O: \(error)"
            let failure = EndpointError(.connection, message)
            broken = failure
            for write in writes { write.completion(.failure(failure)) }
            failWaiting(failure)
            close(broken: "writing failed: \(message)")
        }
    }

    private func failWaiting(_ error: EndpointError) {
        let held = waiting.values.sorted { $0.offset < $1.offset }
        waiting.removeAll()
        for write in held { write.completion(.failure(error)) }
    }

    func close() -> EventLoopFuture<Void> {
        eventLoop.preconditionInEventLoop()
        let (closed, started) = state.beginClosing(on: eventLoop)
        if started && active == nil { startNext() }
        return closed
    }

    func abort() {
        eventLoop.preconditionInEventLoop()
        if state.isClosed { return }
        let running = active?.writes ?? []
        active = nil
        let error = EndpointError(.connection, "\(name): connection aborted")
        for write in running { write.completion(.failure(error)) }
        failWaiting(error)
        // A batch cut off half way leaves the stream at an unknown offset.
        close(broken: running.isEmpty ? nil
              : "a connection was aborted while writing at offset \(running[0].offset); the output is incomplete")
    }

    /// Called when nothing is being written and nothing that is next has arrived: writes
    /// still held wait for bytes that will not come any more.
    private func finishClosingIfIdle() {
        guard case .closing = state, active == nil else { return }
        if let first = waiting.values.min(by: { $0.offset < $1.offset }) {
            failWaiting(EndpointError(.connection, "\(name): write at offset \(first.offset) was never written: "
                                      + "the bytes from offset \(streamOffset) did not arrive before the connection closed"))
        }
        close(broken: nil)
    }

    private func close(broken: String?) {
        guard !state.isClosed else { return }
        let closing = state.markClosed()
        endpoint.release(position: streamOffset, end: nil, broken: broken)
        closing?.succeed()
    }
}

/// The blocking halves of pipe I/O, run on the thread pool.
enum PipeIO {
    /// Reads up to `count` bytes; fewer only at the end of the input.
    static func read(_ descriptor: SharedDescriptor, count: Int, at offset: UInt64, name: String,
                     closedError: () -> EndpointError) throws -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: count)
        guard count > 0 else { return buffer }
        _ = try descriptor.use(closedError: closedError) { fd in
            try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { raw in
                var done = 0
                while done < count {
                    do {
                        let got = try fd.read(into: UnsafeMutableRawBufferPointer(rebasing: raw[done..<count]))
                        if got == 0 { break }
                        done += got
                    } catch Errno.resourceTemporarilyUnavailable {
                        LinuxIO.waitUntilReady(fd.rawValue, events: Int16(POLLIN))
                    } catch {
                        throw EndpointError(.connection, "\(name): read at offset \(offset + UInt64(done)) failed: "
                                            + systemErrorText(error))
                    }
                }
                return done
            }
        }
        return buffer
    }

    /// Writes the chunks back to back, all of them.
    static func write(_ descriptor: SharedDescriptor, _ chunks: [PipeChunk], at offset: UInt64, name: String,
                      closedError: () -> EndpointError) throws {
        try descriptor.use(closedError: closedError) { fd in
            var position = offset
            for chunk in chunks {
                switch chunk {
                case .bytes(let pieces):
                    for piece in pieces {
                        try piece.withUnsafeReadableBytes { try writeAll(fd, $0, at: position, name: name) }
                        position += UInt64(piece.readableBytes)
                    }
                case .zeros(let length):
                    let zeroes = [UInt8](repeating: 0, count: Int(min(length, 1 << 20)))
                    try zeroes.withUnsafeBytes { raw in
                        var left = length
                        while left > 0 {
                            let count = Int(min(left, UInt64(raw.count)))
                            try writeAll(fd, UnsafeRawBufferPointer(rebasing: raw[..<count]), at: position, name: name)
                            position += UInt64(count)
                            left -= UInt64(count)
                        }
                    }
                }
            }
        }
    }

    private static func writeAll(_ fd: SystemFileDescriptor, _ raw: UnsafeRawBufferPointer, at offset: UInt64,
                                 name: String) throws {
        var done = 0
        while done < raw.count {
            do {
                done += try fd.write(UnsafeRawBufferPointer(rebasing: raw[done...]))
            } catch Errno.resourceTemporarilyUnavailable {
                LinuxIO.waitUntilReady(fd.rawValue, events: Int16(POLLOUT))
            } catch {
                throw EndpointError(.connection, "\(name): write of \(raw.count - done) bytes at offset "
                                    + "\(offset + UInt64(done)) failed: \(systemErrorText(error))")
            }
        }
    }
}
