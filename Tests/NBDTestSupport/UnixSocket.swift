import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Unix stream sockets for the test servers and relays: listen, connect, send flags.
public enum UnixSocket {
    #if canImport(Glibc)
    static let stream = Int32(SOCK_STREAM.rawValue)
    static let noSignal = Int32(MSG_NOSIGNAL)
    #else
    static let stream = SOCK_STREAM
    static let noSignal: Int32 = 0
    #endif

    static func address(_ path: String) throws -> sockaddr_un {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw TestSupportError("socket path too long: \(path)")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        return address
    }

    public static func listen(at path: String) throws -> Int32 {
        var address = try address(path)
        let fd = socket(AF_UNIX, stream, 0)
        guard fd >= 0 else { throw TestSupportError("socket failed: \(String(cString: strerror(errno)))") }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard bound == 0, unixListen(fd, 64) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw TestSupportError("cannot listen on \(path): \(reason)")
        }
        return fd
    }

    public static func connect(to path: String) throws -> Int32 {
        var address = try address(path)
        let fd = socket(AF_UNIX, stream, 0)
        guard fd >= 0 else { throw TestSupportError("socket failed: \(String(cString: strerror(errno)))") }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                unixConnect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard connected == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw TestSupportError("cannot connect to \(path): \(reason)")
        }
        return fd
    }
}

// File-level wrappers, so that the enum's members named like these calls do not hide them.
private func unixListen(_ fd: Int32, _ backlog: Int32) -> Int32 { listen(fd, backlog) }
private func unixConnect(_ fd: Int32, _ address: UnsafePointer<sockaddr>, _ length: socklen_t) -> Int32 {
    connect(fd, address, length)
}
