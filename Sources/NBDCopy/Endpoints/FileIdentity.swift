import Synchronization
#if canImport(Glibc)
import Glibc
#endif

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
