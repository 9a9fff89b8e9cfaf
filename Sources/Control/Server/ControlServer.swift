import NIOCore
import NIOPosix
#if canImport(Glibc)
import Glibc
#endif

/// A copy's control socket: a Unix-domain listener, mode 0600, that serves `ControlHub`'s
/// JSON lines to peers of the same uid (or root) and closes any other peer at once.
///
/// Every bound is per client: a command line is at most 64 KiB, a client's unsent output at
/// most 1 MiB, and at most `maximumClients` are served at a time.
public final class ControlServer: Sendable {
    public let path: String
    public let hub: ControlHub
    private let listener: any Channel
    /// The socket file's inode: `close()` removes the path only while it is still ours.
    private let inode: ino_t

    public static let maximumCommandBytes = 64 << 10
    public static let maximumPendingOutputBytes = 1 << 20
    public static let maximumClients = 128

    private init(path: String, hub: ControlHub, listener: any Channel, inode: ino_t) {
        self.path = path
        self.hub = hub
        self.listener = listener
        self.inode = inode
    }

    /// Listens at `path`. A socket file left there by a process that is gone is replaced;
    /// one that a live process answers on, or a file that is no socket, is refused.
    public static func start(at path: String, hub: ControlHub,
                             group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> ControlServer {
        try StaleSocket.removeIfUnanswered(path)
        let listener = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 128)
            .serverChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelOption(.writeBufferWaterMark,
                                value: .init(low: maximumPendingOutputBytes / 4, high: maximumPendingOutputBytes))
            .childChannelInitializer { channel in
                PeerCredentials.of(channel).flatMapThrowing { peer in
                    guard peer.mayControl() else { throw ControlDirectoryError("peer uid \(peer.uid) refused") }
                    guard hub.clientCount < maximumClients else { throw ControlDirectoryError("too many clients") }
                    try channel.pipeline.syncOperations.addHandlers(
                        ByteToMessageHandler(LineFrameDecoder(maximumLineBytes: maximumCommandBytes)),
                        ControlConnectionHandler(hub: hub))
                }
            }
            .bind(unixDomainSocketPath: path, cleanupExistingSocketFile: false).get()
        var status = stat()
        guard chmod(path, 0o600) == 0, lstat(path, &status) == 0 else {
            let reason = String(cString: strerror(errno))
            try? await listener.close()
            unlink(path)
            throw ControlDirectoryError("cannot set the mode of \(path): \(reason)")
        }
        return ControlServer(path: path, hub: hub, listener: listener, inode: status.st_ino)
    }

    /// Stops listening, closes every client (after what was queued for it), and removes
    /// the socket file.
    public func close() async {
        try? await listener.close()
        for channel in hub.stop() {
            try? await channel.close()
        }
        removeSocketFile()
    }

    /// Removes the socket file, unless another has taken its place; from any thread, for a
    /// process about to exit. New clients can no longer find the copy; those connected
    /// stay until `close()`.
    public func removeSocketFile() {
        var status = stat()
        if lstat(path, &status) == 0 && status.st_ino == inode { unlink(path) }
    }
}
