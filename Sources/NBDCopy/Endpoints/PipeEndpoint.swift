import NBD
import NIOCore
import NIOPosix
import Synchronization
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
