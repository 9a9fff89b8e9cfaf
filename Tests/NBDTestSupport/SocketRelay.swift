import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A Unix-socket relay in front of a real NBD server, for tests that must lose one client
/// connection while the others go on.
///
/// It listens on its own socket in a private temp folder; every client it accepts gets its
/// own connection to the upstream server's socket, and bytes are copied both ways by two
/// threads per connection with plain POSIX sockets. `cut(_:)` ends one client connection
/// (the client sees end of file) but keeps that connection's server side open, still
/// reading and discarding what the server sends, until `stop()`: nbdkit 1.32.5 aborts on an
/// assertion when a client vanishes with requests in flight, so the server must be allowed
/// to answer everything first. A connection the client or server ends by itself is passed
/// on as a half-close, as a direct connection would be.
///
/// ```swift
/// let relay = try SocketRelay(upstream: server.socketPath)
/// defer { relay.stop() }
/// // connect to relay.uri; later relay.cut(2)
/// ```
public final class SocketRelay: @unchecked Sendable {
    public let directory: TemporaryDirectory
    public let socketPath: String
    public let upstreamPath: String
    public let exportName: String

    private let lock = NSLock()
    private var links: [Link] = []
    private var listener: Int32
    private var stopping = false
    private var stopped = false
    private var failures: [String] = []
    private let threads = DispatchGroup()

    /// `nbd+unix:///EXPORT?socket=RELAY_SOCKET`
    public var uri: String { "nbd+unix:///\(exportName)?socket=\(socketPath)" }

    /// Starts listening at once; connections are accepted and relayed in the background.
    public init(upstream upstreamPath: String, exportName: String = "") throws {
        self.upstreamPath = upstreamPath
        self.exportName = exportName
        directory = try TemporaryDirectory(prefix: "nbd-relay")
        socketPath = directory.file("relay.sock")
        do {
            listener = try UnixSocket.listen(at: socketPath)
        } catch {
            directory.remove()
            throw error
        }
        threads.enter()
        let thread = Thread { [self] in
            acceptLoop()
            threads.leave()
        }
        thread.name = "SocketRelay.accept"
        thread.start()
    }

    deinit { stop() }

    /// Client connections accepted so far (including cut and closed ones).
    public var acceptedCount: Int { lock.withLock { links.count } }

    /// Client connections accepted and not cut or closed by either side.
    public var openCount: Int { lock.withLock { links.filter { !$0.cut && !$0.clientClosed }.count } }

    /// Problems the relay met (upstream unreachable...), for test messages.
    public var problems: [String] { lock.withLock { failures } }

    /// Bytes the relay carried from the client to the server on connection `index`.
    public func bytesFromClient(_ index: Int) -> Int {
        lock.withLock { index < links.count ? links[index].bytesFromClient : 0 }
    }

    /// Waits until at least `count` client connections were accepted; false after `timeout`.
    @discardableResult
    public func waitForConnections(_ count: Int, timeout: Duration = .seconds(10)) -> Bool {
        let deadline = ContinuousClock.now + timeout
        while acceptedCount < count {
            if ContinuousClock.now > deadline { return false }
            usleep(5_000)
        }
        return true
    }

    /// Cuts client connection `index` (0 for the first accepted): the client sees the
    /// connection end; the server side stays open, its replies read and discarded, until
    /// `stop()`. Returns false when there is no such connection or it is already over.
    @discardableResult
    public func cut(_ index: Int) -> Bool {
        let link: Link? = lock.withLock {
            guard index < links.count, !links[index].cut, !links[index].clientClosed else { return nil }
            links[index].cut = true
            return links[index]
        }
        guard let link else { return false }
        // Wakes both threads blocked on the client socket; the fd is closed in stop().
        shutdown(link.client, Int32(SHUT_RDWR))
        return true
    }

    /// Closes every socket, waits for the threads and removes the folder.
    public func stop() {
        let current: [Link]? = lock.withLock {
            guard !stopped else { return nil }
            stopped = true
            stopping = true
            return links
        }
        guard let current else { return }
        for link in current {
            shutdown(link.client, Int32(SHUT_RDWR))
            shutdown(link.upstream, Int32(SHUT_RDWR))
        }
        _ = threads.wait(timeout: .now() + 10)
        for link in current {
            close(link.client)
            close(link.upstream)
        }
        close(listener)
        directory.remove()
    }

    // MARK: Threads

    private var isStopping: Bool { lock.withLock { stopping } }

    private func acceptLoop() {
        while !isStopping {
            var pollfd = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            let ready = poll(&pollfd, 1, 100)
            if ready <= 0 { continue }
            let client = accept(listener, nil, nil)
            guard client >= 0 else { continue }
            _ = fcntl(client, F_SETFD, FD_CLOEXEC)
            let upstream: Int32
            do {
                upstream = try UnixSocket.connect(to: upstreamPath)
            } catch {
                lock.withLock { failures.append("\(error)") }
                close(client)
                continue
            }
            let link = Link(client: client, upstream: upstream)
            let accepted = lock.withLock { () -> Int? in
                guard !stopping else { return nil }
                links.append(link)
                return links.count - 1
            }
            guard let index = accepted else {
                close(client)
                close(upstream)
                return
            }
            startPump(from: client, to: upstream, index: index, fromClient: true)
            startPump(from: upstream, to: client, index: index, fromClient: false)
        }
    }

    private func startPump(from source: Int32, to target: Int32, index: Int, fromClient: Bool) {
        threads.enter()
        let thread = Thread { [self] in
            pump(from: source, to: target, index: index, fromClient: fromClient)
            threads.leave()
        }
        thread.name = "SocketRelay.\(index).\(fromClient ? "up" : "down")"
        thread.start()
    }

    /// Copies bytes until `source` ends. Server-to-client bytes are discarded once the
    /// client is cut; a cut client's end is not passed on to the server.
    private func pump(from source: Int32, to target: Int32, index: Int, fromClient: Bool) {
        var buffer = [UInt8](repeating: 0, count: 256 << 10)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(source, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            let isCut = lock.withLock { links[index].cut }
            if isCut {
                if fromClient { break }
                continue // Keep reading the server's replies so it can finish them.
            }
            if fromClient { lock.withLock { links[index].bytesFromClient += count } }
            if !writeAll(target, buffer, count) {
                if !fromClient { continue } // The client went away: keep draining the server.
                break
            }
        }
        let (isCut, isStopping) = lock.withLock { (links[index].cut, stopping) }
        if fromClient {
            lock.withLock { links[index].clientClosed = true }
            // Pass on an orderly end (after NBD_CMD_DISC), but never a cut or a stop.
            if !isCut && !isStopping { shutdown(target, Int32(SHUT_WR)) }
        } else if !isCut && !isStopping {
            shutdown(target, Int32(SHUT_WR))
        }
    }

    private func writeAll(_ fd: Int32, _ buffer: [UInt8], _ count: Int) -> Bool {
        var sent = 0
        while sent < count {
            let written = buffer.withUnsafeBytes { raw in
                send(fd, raw.baseAddress! + sent, count - sent, UnixSocket.noSignal)
            }
            if written < 0 && errno == EINTR { continue }
            if written <= 0 { return false }
            sent += written
        }
        return true
    }

    private final class Link: @unchecked Sendable {
        let client: Int32
        let upstream: Int32
        var cut = false
        var clientClosed = false
        var bytesFromClient = 0
        init(client: Int32, upstream: Int32) {
            self.client = client
            self.upstream = upstream
        }
    }
}
