import Control
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// Who is at the other end of a client connection.
public enum ClientIdentity: Sendable, Equatable, CustomStringConvertible {
    /// A Unix-socket peer, from `SO_PEERCRED`; `command` is its `/proc/PID/comm`, nil when
    /// it could not be read (the process is gone, or another namespace).
    case process(pid: Int32, uid: UInt32, command: String?)
    /// A TCP peer.
    case address(host: String, port: Int)
    /// Neither could be found out.
    case unknown

    public var description: String {
        switch self {
        case .process(let pid, _, let command): return "\(command ?? "pid") [\(pid)]"
        case .address(let host, let port): return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        case .unknown: return "unknown"
        }
    }

    /// Finds out who `channel`'s peer is, on its event loop; never fails.
    static func of(_ channel: any Channel) -> EventLoopFuture<ClientIdentity> {
        if let remote = channel.remoteAddress, let host = remote.ipAddress, let port = remote.port {
            return channel.eventLoop.makeSucceededFuture(.address(host: host, port: port))
        }
        return PeerCredentials.of(channel)
            .map { ClientIdentity.process(pid: $0.pid, uid: $0.uid, command: commandName(of: $0.pid)) }
            .recover { _ in .unknown }
    }

    /// The short command name the kernel keeps for `pid` (`/proc/PID/comm`, at most 15 bytes).
    static func commandName(of pid: Int32) -> String? {
        guard pid > 0, let file = fopen("/proc/\(pid)/comm", "r") else { return nil }
        defer { fclose(file) }
        var line = [CChar](repeating: 0, count: 64)
        guard fgets(&line, Int32(line.count), file) != nil else { return nil }
        let name = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return name.hasSuffix("\n") ? String(name.dropLast()) : name
    }
}
