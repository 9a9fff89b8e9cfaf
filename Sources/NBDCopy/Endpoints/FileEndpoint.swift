import NIOCore
import NIOPosix
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
