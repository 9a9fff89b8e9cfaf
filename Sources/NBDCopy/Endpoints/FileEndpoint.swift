import NBD
import NIOCore
import NIOPosix
import Synchronization
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// A local regular file or block device.
///
/// One descriptor is shared by every connection: positioned reads and writes
/// (`pread`/`pwrite`) do not interfere, so a "connection" is a cheap handle and many lanes
/// may use the file at once. Every blocking call runs on a thread pool, never on an event
/// loop; completions come back on the connection's event loop.
///
/// As a destination, a regular file is created when missing; when the source size is
/// given it is truncated to zero length and then extended to that size, as nbdcopy does,
/// so it starts as one hole (`startsZeroed`). A block device keeps its size (the engine
/// checks that it is large enough) and is opened with `O_EXCL`, which Linux refuses while
/// the device is mounted.
///
/// Opening a file for writing that is open as a source in this process (the same device
/// and inode, whatever the path) is refused before anything is truncated.
///
/// When a copy into a file that this endpoint created fails or stops, the file is cut to
/// the bytes that arrived whole (`copyEndedIncomplete`), so it never looks finished; a file
/// that existed before, or a block device, is left as it is.
public final class FileEndpoint: CopyEndpoint {
    public enum Kind: Sendable, Equatable {
        case regularFile
        case blockDevice
    }

    /// How many connections a file allows: positioned I/O needs no coordination.
    public static let defaultMaximumConnections = 64

    public let path: String
    public let kind: Kind
    /// Device and inode, to tell whether two paths are the same file.
    public var identity: FileIdentity { file.identity }
    public var displayName: String { path }
    public let size: UInt64?
    public let maximumConnections: Int
    public var connectionLimitReason: String {
        "a local file allows up to \(maximumConnections) parallel handles"
    }
    public let constraints: BlockConstraints
    public let isReadOnly: Bool
    public var canZero: Bool { true }
    public var canReportExtents: Bool { kind == .regularFile }
    public let startsZeroed: Bool
    public var isSequential: Bool { false }
    /// Whether opening it as a destination created it (it did not exist before).
    public let wasCreated: Bool

    let file: FileIO
    let threadPool: NIOThreadPool

    private init(file: FileIO, isReadOnly: Bool, startsZeroed: Bool, wasCreated: Bool, preferredBlockSize: UInt32,
                 maximumConnections: Int, threadPool: NIOThreadPool) {
        self.file = file
        self.wasCreated = wasCreated
        self.path = file.path
        self.kind = file.kind
        self.size = file.size
        self.isReadOnly = isReadOnly
        self.startsZeroed = startsZeroed
        self.maximumConnections = maximumConnections
        self.threadPool = threadPool
        let preferred = preferredBlockSize.nonzeroBitCount == 1 ? min(max(preferredBlockSize, 512), 1 << 20) : 4096
        self.constraints = BlockConstraints(minimum: 1, preferred: preferred, maximum: 32 << 20)
    }

    /// Opens `path` as a source (`forWriting` false) or destination.
    ///
    /// As a destination, a missing file is created; a regular file is truncated to zero
    /// and extended to `createWithSize` when that is given (otherwise it keeps its size and
    /// contents, and writes beyond its end extend it). Throws `EndpointError` naming the path.
    public static func open(path: String, forWriting: Bool, createWithSize: UInt64?,
                            maximumConnections: Int = defaultMaximumConnections,
                            threadPool: NIOThreadPool = .singleton) throws -> FileEndpoint {
        func failure(_ what: String, _ error: any Error) -> EndpointError {
            EndpointError(.connection, "\(path): \(what): \(systemErrorText(error))")
        }

        var descriptor: SystemFileDescriptor
        var created = false
        if forWriting {
            // A block device is opened exclusively, so a mounted one is refused.
            var status = stat()
            let exists = stat(path, &status) == 0
            let isBlockDevice = exists && status.st_mode & S_IFMT == S_IFBLK
            if exists && OpenSources.contains(FileIdentity(status)) {
                throw EndpointError(.connection, "\(path): is also the source of this copy; refusing to overwrite it")
            }
            do {
                descriptor = try SystemFileDescriptor.open(path, .readWrite,
                                                     options: isBlockDevice ? [.closeOnExec, .exclusiveCreate] : [.closeOnExec])
            } catch Errno.noSuchFileOrDirectory {
                do {
                    descriptor = try SystemFileDescriptor.open(path, .readWrite, options: [.create, .exclusiveCreate, .closeOnExec],
                                                         permissions: [.ownerReadWrite, .groupRead, .otherRead])
                    created = true
                } catch {
                    throw failure("cannot create", error)
                }
            } catch Errno.resourceBusy where isBlockDevice {
                throw EndpointError(.connection, "\(path): cannot open the block device for writing: it is in use (mounted?)")
            } catch {
                throw failure("cannot open for writing", error)
            }
        } else {
            do {
                descriptor = try SystemFileDescriptor.open(path, .readOnly, options: [.closeOnExec])
            } catch {
                throw failure("cannot open for reading", error)
            }
        }

        do {
            var status = stat()
            guard fstat(descriptor.rawValue, &status) == 0 else { throw Errno(rawValue: errno) }
            let kind: Kind
            let size: UInt64
            var startsZeroed = false
            switch status.st_mode & S_IFMT {
            case S_IFREG:
                kind = .regularFile
                if forWriting, let newSize = createWithSize {
                    // Like nbdcopy: drop the old contents, then one hole of the right size.
                    do {
                        if !created && status.st_size != 0 { try descriptor.resize(to: 0) }
                        try descriptor.resize(to: Int64(newSize))
                    } catch {
                        throw failure("cannot set the size to \(newSize) bytes", error)
                    }
                    size = newSize
                    startsZeroed = true
                } else {
                    size = UInt64(status.st_size)
                    startsZeroed = created
                }
            case S_IFBLK:
                kind = .blockDevice
                var bytes: UInt64 = 0
                guard ioctl(descriptor.rawValue, LinuxIO.blockGetSize64, &bytes) == 0 else {
                    throw failure("cannot read the block device size (BLKGETSIZE64)", Errno(rawValue: errno))
                }
                size = bytes
            case S_IFDIR:
                throw EndpointError(.connection, "\(path): is a directory, not a file or block device")
            case S_IFIFO, S_IFSOCK, S_IFCHR:
                throw EndpointError(.connection,
                                    "\(path): is not a regular file or block device (use - for a pipe, null: to discard)")
            default:
                throw EndpointError(.connection, "\(path): is not a regular file or block device")
            }
            let file = FileIO(path: path, kind: kind, size: size, identity: FileIdentity(status), isSource: !forWriting,
                              descriptor: SharedDescriptor(descriptor.rawValue, ownsDescriptor: true))
            return FileEndpoint(file: file, isReadOnly: !forWriting, startsZeroed: startsZeroed, wasCreated: created,
                                preferredBlockSize: UInt32(clamping: status.st_blksize),
                                maximumConnections: max(1, maximumConnections), threadPool: threadPool)
        } catch {
            try? descriptor.close()
            if created { unlink(path) }  // do not leave a half-made file behind
            if let endpointError = error as? EndpointError { throw endpointError }
            throw failure("cannot inspect", error)
        }
    }

    /// fsync makes writes durable.
    public var canFlush: Bool { true }

    public func connect(on eventLoop: any EventLoop) async throws -> NIOLoopBound<any EndpointConnection> {
        guard !file.descriptor.isClosed else { throw file.closedError() }
        let (file, isReadOnly, threadPool, path) = (self.file, self.isReadOnly, self.threadPool, self.path)
        return try await eventLoop.bindConnection {
            FileConnection(file: file, isReadOnly: isReadOnly,
                           requests: PoolRequests(eventLoop: eventLoop, threadPool: threadPool, name: path))
        }
    }

    /// Closes the file once requests still running have finished.
    public func close() async {
        file.close()
    }

    /// Cuts a file this endpoint created to `completedPrefix`; leaves any other as it is.
    public func copyEndedIncomplete(completedPrefix: UInt64) -> IncompleteCopyOutcome {
        guard wasCreated, kind == .regularFile else { return .leftAsIs }
        // On an exit at once, writes may still run on the thread pool: one that landed
        // after the cut would make the file longer than its complete prefix again.
        guard file.descriptor.closeAndWait(timeout: .seconds(10)) else {
            return .truncateFailed("writes to it did not finish within 10 s")
        }
        // The engine closes its descriptor when the copy ends, so the path is opened again,
        // and cut only while it still names the file made here.
        let descriptor: SystemFileDescriptor
        do {
            descriptor = try SystemFileDescriptor.open(path, .writeOnly, options: [.closeOnExec, .noFollow])
        } catch {
            return .truncateFailed("cannot open it again: \(systemErrorText(error))")
        }
        defer { try? descriptor.close() }
        var status = stat()
        guard fstat(descriptor.rawValue, &status) == 0 else {
            return .truncateFailed("cannot inspect it: \(systemErrorText(errno))")
        }
        guard FileIdentity(status) == identity else { return .truncateFailed("the path names another file now") }
        do {
            try descriptor.resize(to: Int64(completedPrefix))
        } catch {
            return .truncateFailed(systemErrorText(error))
        }
        return .truncated
    }
}

/// A handle on a `FileEndpoint` for one lane.
final class FileConnection: EndpointConnection {
    let file: FileIO
    let isReadOnly: Bool
    let requests: PoolRequests

    init(file: FileIO, isReadOnly: Bool, requests: PoolRequests) {
        self.file = file
        self.isReadOnly = isReadOnly
        self.requests = requests
    }

    var eventLoop: any EventLoop { requests.eventLoop }
    var inFlightCount: Int { requests.inFlightCount }

    func read(offset: UInt64, length: UInt32, completion: @escaping (Result<[ReadPiece], EndpointError>) -> Void) {
        let file = self.file
        requests.run({ try file.read(offset: offset, length: length) }, completion: { result in
            completion(result.map { [ReadPiece.data(offset: offset, bytes: $0)] })
        })
    }

    func write(_ pieces: [ByteBuffer], at offset: UInt64, completion: @escaping (Result<Void, EndpointError>) -> Void) {
        guard !isReadOnly else {
            completion(.failure(EndpointError(.request, "\(file.path): write at offset \(offset): opened read-only")))
            return
        }
        let file = self.file
        requests.run({ try file.write(pieces, at: offset) }, completion: completion)
    }

    func zero(offset: UInt64, length: UInt32, allocate: Bool, completion: @escaping (Result<Void, EndpointError>) -> Void) {
        guard !isReadOnly else {
            completion(.failure(EndpointError(.request, "\(file.path): zero at offset \(offset): opened read-only")))
            return
        }
        let file = self.file
        requests.run({ try file.zero(offset: offset, length: UInt64(length), allocate: allocate) }, completion: completion)
    }

    func extents(offset: UInt64, length: UInt32, completion: @escaping (Result<[ImageExtent], EndpointError>) -> Void) {
        let file = self.file
        requests.run({ try file.extents(offset: offset, length: UInt64(length)) }, completion: completion)
    }

    /// fsync, on the thread pool like every other request.
    func flush(completion: @escaping (Result<Void, EndpointError>) -> Void) {
        let file = self.file
        requests.run({ try file.synchronize() }, completion: completion)
    }

    func close() -> EventLoopFuture<Void> { requests.close() }

    func abort() { requests.abort(reason: "connection aborted") }
}

/// The blocking operations on a file, run on the thread pool.
final class FileIO: Sendable {
    let path: String
    let kind: FileEndpoint.Kind
    /// The size when opened; reads beyond it are refused.
    let size: UInt64
    let identity: FileIdentity
    let descriptor: SharedDescriptor
    /// Whether `identity` is registered in `OpenSources` (until closed).
    private let registeredAsSource: Mutex<Bool>

    /// Writes of zeroes (when the file system cannot zero a range) go in pieces of this size.
    static let zeroChunk = 1 << 20

    init(path: String, kind: FileEndpoint.Kind, size: UInt64, identity: FileIdentity, isSource: Bool,
         descriptor: SharedDescriptor) {
        self.path = path
        self.kind = kind
        self.size = size
        self.identity = identity
        self.descriptor = descriptor
        self.registeredAsSource = Mutex(isSource)
        if isSource { OpenSources.add(identity) }
    }

    deinit {
        unregister()
    }

    /// Closes the descriptor (once nothing uses it) and forgets the file as a source.
    func close() {
        descriptor.close()
        unregister()
    }

    private func unregister() {
        let wasRegistered = registeredAsSource.withLock { registered in
            defer { registered = false }
            return registered
        }
        if wasRegistered { OpenSources.remove(identity) }
    }

    func closedError() -> EndpointError {
        EndpointError(.connection, "\(path): the file is closed")
    }

    private func failure(_ operation: String, offset: UInt64, _ error: any Error) -> EndpointError {
        if let endpointError = error as? EndpointError { return endpointError }
        return EndpointError(.request, "\(path): \(operation) at offset \(offset) failed: \(systemErrorText(error))",
                             errno: (error as? Errno).map { NBDErrno(rawValue: UInt32(bitPattern: $0.rawValue)) })
    }

    /// Reads exactly `length` bytes at `offset` (looping on short reads).
    func read(offset: UInt64, length: UInt32) throws -> ByteBuffer {
        let count = Int(length)
        guard offset <= size, UInt64(count) <= size - offset else {
            throw EndpointError(.request,
                                "\(path): read of \(count) bytes at offset \(offset) goes beyond the end of the file (\(size) bytes)")
        }
        var buffer = ByteBufferAllocator().buffer(capacity: count)
        guard count > 0 else { return buffer }
        _ = try descriptor.use(closedError: closedError) { fd in
            try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { raw in
                var done = 0
                while done < count {
                    let position = offset + UInt64(done)
                    let got: Int
                    do {
                        got = try fd.read(fromAbsoluteOffset: Int64(position),
                                          into: UnsafeMutableRawBufferPointer(rebasing: raw[done..<count]))
                    } catch {
                        throw failure("read of \(count - done) bytes", offset: position, error)
                    }
                    guard got > 0 else {
                        throw EndpointError(.request, "\(path): read at offset \(position) reached the end of the file, "
                                            + "which should be \(size) bytes long (did it shrink during the copy?)")
                    }
                    done += got
                }
                return count
            }
        }
        return buffer
    }

    /// Writes the pieces back to back from `offset` (looping on short writes).
    func write(_ pieces: [ByteBuffer], at offset: UInt64) throws {
        try descriptor.use(closedError: closedError) { fd in
            var position = offset
            for piece in pieces {
                try piece.withUnsafeReadableBytes { raw in
                    try writeAll(fd, raw, at: position)
                }
                position += UInt64(piece.readableBytes)
            }
        }
    }

    private func writeAll(_ fd: SystemFileDescriptor, _ raw: UnsafeRawBufferPointer, at offset: UInt64) throws {
        var done = 0
        while done < raw.count {
            let position = offset + UInt64(done)
            do {
                let wrote = try fd.write(toAbsoluteOffset: Int64(position), UnsafeRawBufferPointer(rebasing: raw[done...]))
                guard wrote > 0 else { throw Errno.ioError }
                done += wrote
            } catch {
                throw failure("write of \(raw.count - done) bytes", offset: position, error)
            }
        }
    }

    /// Makes the range read as zeroes: punches a hole (or, with `allocate`, zeroes it in
    /// place), and writes zeroes when the file system or device cannot.
    func zero(offset: UInt64, length: UInt64, allocate: Bool) throws {
        guard length > 0 else { return }
        try descriptor.use(closedError: closedError) { fd in
            let modes = allocate
                ? [LinuxIO.fallocZeroRange | LinuxIO.fallocKeepSize]
                : [LinuxIO.fallocPunchHole | LinuxIO.fallocKeepSize, LinuxIO.fallocZeroRange | LinuxIO.fallocKeepSize]
            var zeroed = false
            for mode in modes {
                if LinuxIO.fallocate(fd.rawValue, mode: mode, offset: Int64(offset), length: Int64(length)) == 0 {
                    zeroed = true
                    break
                }
                let code = errno
                // Not supported here (or, for a device, not at this alignment): try the next way.
                guard code == EOPNOTSUPP || code == ENOSYS || code == EINVAL || code == ENODEV else {
                    let operation = mode & LinuxIO.fallocPunchHole != 0 ? "punching a hole of" : "zeroing"
                    throw failure("\(operation) \(length) bytes", offset: offset, Errno(rawValue: code))
                }
            }
            if zeroed {
                // Zeroing keeps the size; a range beyond the end must still extend the file.
                // One zero byte at the end extends it without ever shrinking it.
                if kind == .regularFile && offset + length > size {
                    let zeroByte: [UInt8] = [0]
                    try zeroByte.withUnsafeBytes { try writeAll(fd, $0, at: offset + length - 1) }
                }
                return
            }
            let chunk = [UInt8](repeating: 0, count: Int(min(length, UInt64(Self.zeroChunk))))
            try chunk.withUnsafeBytes { zeroes in
                var position = offset
                let end = offset + length
                while position < end {
                    let count = Int(min(UInt64(zeroes.count), end - position))
                    try writeAll(fd, UnsafeRawBufferPointer(rebasing: zeroes[..<count]), at: position)
                    position += UInt64(count)
                }
            }
        }
    }

    /// Data and hole ranges from `offset` up to `length` bytes (and never beyond the end),
    /// from SEEK_DATA and SEEK_HOLE. Holes read as zeroes; data ranges are not checked.
    func extents(offset: UInt64, length: UInt64) throws -> [ImageExtent] {
        let end = min(offset + length, size)
        guard offset < end else { return [] }
        return try descriptor.use(closedError: closedError) { fd in
            var extents: [ImageExtent] = []
            func add(_ start: UInt64, _ stop: UInt64, isZero: Bool) {
                guard stop > start else { return }
                if let last = extents.last, last.isZero == isZero, last.end == start {
                    extents[extents.count - 1].length += stop - start
                } else {
                    extents.append(ImageExtent(offset: start, length: stop - start, isZero: isZero))
                }
            }
            var position = offset
            while position < end {
                let data: UInt64
                do {
                    data = UInt64(try fd.seek(offset: Int64(position), from: .init(rawValue: LinuxIO.seekData)))
                } catch Errno.noSuchAddressOrDevice {
                    // No data from here to the end of the file: the rest is a hole.
                    add(position, end, isZero: true)
                    break
                } catch Errno.invalidArgument {
                    // The file system cannot tell: report data.
                    add(position, end, isZero: false)
                    break
                } catch {
                    throw failure("SEEK_DATA", offset: position, error)
                }
                if data > position {
                    add(position, min(data, end), isZero: true)
                    position = min(data, end)
                    continue
                }
                let hole: UInt64
                do {
                    hole = UInt64(try fd.seek(offset: Int64(position), from: .init(rawValue: LinuxIO.seekHole)))
                } catch Errno.noSuchAddressOrDevice {
                    // The file shrank under us; what is left reads as zero.
                    add(position, end, isZero: true)
                    break
                } catch {
                    throw failure("SEEK_HOLE", offset: position, error)
                }
                // The hole at the end of a file starts at its size; never go backwards.
                let stop = min(max(hole, position + 1), end)
                add(position, stop, isZero: false)
                position = stop
            }
            return extents
        }
    }

    /// fsync.
    func synchronize() throws {
        try descriptor.use(closedError: closedError) { fd in
            while fsync(fd.rawValue) != 0 {
                let code = errno
                if code == EINTR { continue }
                throw EndpointError(.request, "\(path): fsync failed: \(systemErrorText(code))",
                                    errno: NBDErrno(rawValue: UInt32(bitPattern: code)))
            }
        }
    }
}

/// A file's device and inode.
public struct FileIdentity: Hashable, Sendable {
    public var device: UInt64
    public var inode: UInt64

    public init(device: UInt64, inode: UInt64) {
        self.device = device
        self.inode = inode
    }

    /// A block device is known by its device number (whichever node names it).
    init(_ status: stat) {
        if status.st_mode & S_IFMT == S_IFBLK {
            self.init(device: UInt64(status.st_rdev), inode: 0)
        } else {
            self.init(device: UInt64(status.st_dev), inode: UInt64(status.st_ino))
        }
    }
}

/// Files open as sources in this process, so that none is opened as a destination (and
/// truncated) by mistake.
enum OpenSources {
    private static let counts = Mutex<[FileIdentity: Int]>([:])

    static func add(_ identity: FileIdentity) {
        counts.withLock { $0[identity, default: 0] += 1 }
    }

    static func remove(_ identity: FileIdentity) {
        counts.withLock { counts in
            let left = (counts[identity] ?? 1) - 1
            counts[identity] = left > 0 ? left : nil
        }
    }

    static func contains(_ identity: FileIdentity) -> Bool {
        counts.withLock { $0[identity] != nil }
    }
}
