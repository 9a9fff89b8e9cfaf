import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// Who is at the other end of an accepted Unix-domain connection, from `SO_PEERCRED`:
/// the kernel's record of the peer's pid, uid and gid when it connected, which the peer
/// cannot forge.
public struct PeerCredentials: Sendable, Equatable {
    public var pid: pid_t
    public var uid: uid_t
    public var gid: gid_t

    /// Only the same user, or root, may watch and steer a copy.
    public func mayControl(asUser uid: uid_t = getuid()) -> Bool {
        self.uid == uid || self.uid == 0
    }

    /// Reads the credentials of `channel`'s peer, on its event loop.
    public static func of(_ channel: any Channel) -> EventLoopFuture<PeerCredentials> {
        guard let provider = channel as? any SocketOptionProvider else {
            return channel.eventLoop.makeFailedFuture(ControlDirectoryError("the connection has no socket options"))
        }
        let credentials: EventLoopFuture<KernelCredentials> = provider.unsafeGetSocketOption(
            level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(SO_PEERCRED))
        return credentials.map { PeerCredentials(pid: $0.pid, uid: $0.uid, gid: $0.gid) }
    }
}

/// Linux's `struct ucred`, which Glibc's module leaves out (it needs `_GNU_SOURCE`):
/// what `getsockopt(SO_PEERCRED)` fills in.
private struct KernelCredentials: Sendable {
    var pid: pid_t = 0
    var uid: uid_t = 0
    var gid: gid_t = 0
}
