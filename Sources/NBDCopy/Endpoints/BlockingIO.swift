import Dispatch
import NIOCore
import NIOPosix
import Synchronization
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

// Shared pieces of the endpoints whose I/O is blocking system calls (files, pipes):
// a file descriptor that outlives requests still running on the thread pool, the
// bookkeeping that runs requests there and completes them on the connection's event
// loop, and the Linux calls Swift's Glibc module does not import (they are behind
// _GNU_SOURCE).

/// swift-system's descriptor (NIOCore has a type of the same name).
typealias SystemFileDescriptor = SystemPackage.FileDescriptor

/// `strerror` for `code`.
func systemErrorText(_ code: Int32) -> String {
    String(cString: strerror(code))
}

/// The text of an error thrown by a system call wrapper (`Errno` from swift-system).
func systemErrorText(_ error: any Error) -> String {
    if let errno = error as? Errno { return systemErrorText(errno.rawValue) }
    return "\(error)"
}

/// A file descriptor used by several connections and by work on the thread pool.
///
/// `close()` does not close it under a request that is still running (which might then
/// read or write whatever file reused the number): the last user closes it.
final class SharedDescriptor: Sendable {
    private struct State {
        var users = 0
        var closeRequested = false
        /// Signalled by the last user once closed: `closeAndWait` waits on it.
        var idleWaiter: DispatchSemaphore?
    }

    let rawValue: Int32
    /// Whether `close()` closes the descriptor (false for stdin and stdout).
    let ownsDescriptor: Bool
    private let state = Mutex(State())

    init(_ rawValue: Int32, ownsDescriptor: Bool) {
        self.rawValue = rawValue
        self.ownsDescriptor = ownsDescriptor
    }

    deinit {
        // Nobody can be using it any more: close what close() did not.
        if !state.withLock({ $0.closeRequested }) { closeDescriptor() }
    }

    var fileDescriptor: SystemFileDescriptor { SystemFileDescriptor(rawValue: rawValue) }

    var isClosed: Bool { state.withLock { $0.closeRequested } }

    /// Runs `body` with the descriptor, or throws `closedError()` once `close()` was called.
    func use<T>(closedError: () -> EndpointError, _ body: (SystemFileDescriptor) throws -> T) throws -> T {
        let admitted = state.withLock { state -> Bool in
            guard !state.closeRequested else { return false }
            state.users += 1
            return true
        }
        guard admitted else { throw closedError() }
        defer { release() }
        return try body(fileDescriptor)
    }

    /// Closes the descriptor now, or when the last running `use` ends.
    func close() {
        let closeNow = state.withLock { state -> Bool in
            guard !state.closeRequested else { return false }
            state.closeRequested = true
            return state.users == 0
        }
        if closeNow { closeDescriptor() }
    }

    /// Closes the descriptor and waits, up to `timeout`, until no `use` runs any more;
    /// returns whether none does. For an exit while requests still run on the thread pool:
    /// after it, no write can land on the file.
    @available(*, noasync, message: "waits for blocking calls on the thread pool")
    func closeAndWait(timeout: Duration) -> Bool {
        close()
        let waiter = state.withLock { state -> DispatchSemaphore? in
            guard state.users > 0 else { return nil }
            let waiter = state.idleWaiter ?? DispatchSemaphore(value: 0)
            state.idleWaiter = waiter
            return waiter
        }
        guard let waiter else { return true }
        let (seconds, attoseconds) = timeout.components
        let deadline = DispatchTime.now() + .nanoseconds(Int(seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000))
        guard waiter.wait(timeout: deadline) == .success else { return false }
        // Let another waiter through too.
        waiter.signal()
        return true
    }

    private func release() {
        let (closeNow, waiter) = state.withLock { state -> (Bool, DispatchSemaphore?) in
            state.users -= 1
            let idle = state.users == 0 && state.closeRequested
            return (idle, idle ? state.idleWaiter : nil)
        }
        if closeNow { closeDescriptor() }
        waiter?.signal()
    }

    private func closeDescriptor() {
        if ownsDescriptor { _ = Glibc.close(rawValue) }
    }
}

/// Requests of one connection that run as blocking calls on a thread pool.
///
/// Confined to `eventLoop`: every method is called there, and completions run there,
/// exactly once each. `close()` waits for what is running; `abort()` fails it at once
/// (the blocking call still finishes in the background; its result is dropped).
final class PoolRequests {
    let eventLoop: any EventLoop
    let threadPool: NIOThreadPool
    /// Names the endpoint in messages.
    let name: String
    private var failers: [UInt64: (EndpointError) -> Void] = [:]
    private var nextToken: UInt64 = 0
    private var state = ConnectionLifecycle.open

    init(eventLoop: any EventLoop, threadPool: NIOThreadPool, name: String) {
        self.eventLoop = eventLoop
        self.threadPool = threadPool
        self.name = name
    }

    var inFlightCount: Int { failers.count }

    var isOpen: Bool { state.isOpen }

    /// Runs `work` on the thread pool and hands its result to `completion` on the event loop.
    /// `work` throws `EndpointError`; anything else (the pool is shut down) fails the connection.
    func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T,
                          completion: @escaping (Result<T, EndpointError>) -> Void) {
        eventLoop.preconditionInEventLoop()
        guard isOpen else {
            completion(.failure(EndpointError(.connection, "\(name): the connection is closed")))
            return
        }
        let token = nextToken
        nextToken &+= 1
        failers[token] = { completion(.failure($0)) }
        let name = self.name
        threadPool.runIfActive(eventLoop: eventLoop, work).assumeIsolated().whenComplete { result in
            // Gone when abort() already failed it.
            guard self.failers.removeValue(forKey: token) != nil else { return }
            completion(result.mapError { error in
                error as? EndpointError ?? EndpointError(.connection, "\(name): cannot run blocking I/O: \(error)")
            })
            self.finishClosingIfIdle()
        }
    }

    /// Completes once nothing is running; new requests fail from now on.
    func close() -> EventLoopFuture<Void> {
        eventLoop.preconditionInEventLoop()
        let (closed, started) = state.beginClosing(on: eventLoop)
        if started { finishClosingIfIdle() }
        return closed
    }

    /// Fails everything in flight now and closes.
    func abort(reason: String) {
        eventLoop.preconditionInEventLoop()
        let closing = state.markClosed()
        let pending = failers.sorted { $0.key < $1.key }
        failers = [:]
        let error = EndpointError(.connection, "\(name): \(reason)")
        for (_, fail) in pending { fail(error) }
        closing?.succeed()
    }

    private func finishClosingIfIdle() {
        guard failers.isEmpty, case .closing = state else { return }
        state.markClosed()?.succeed()
    }
}

/// Linux calls and constants that Swift's Glibc module leaves out.
enum LinuxIO {
    static let seekData: Int32 = 3  // SEEK_DATA
    static let seekHole: Int32 = 4  // SEEK_HOLE

    static let fallocKeepSize: Int32 = 0x01  // FALLOC_FL_KEEP_SIZE
    static let fallocPunchHole: Int32 = 0x02  // FALLOC_FL_PUNCH_HOLE
    static let fallocZeroRange: Int32 = 0x10  // FALLOC_FL_ZERO_RANGE

    /// `BLKGETSIZE64`: `_IOR(0x12, 114, size_t)` with a 64-bit size_t.
    static let blockGetSize64 = UInt(0x8008_1272)

    private typealias FallocateFunction = @convention(c) (Int32, Int32, Int64, Int64) -> Int32
    private static let fallocateFunction: FallocateFunction? = lookUp("fallocate64") ?? lookUp("fallocate")

    /// `fallocate(2)`; returns 0 or sets `errno` (ENOSYS when the C library lacks it).
    static func fallocate(_ fd: Int32, mode: Int32, offset: Int64, length: Int64) -> Int32 {
        guard let function = fallocateFunction else {
            errno = ENOSYS
            return -1
        }
        while true {
            let result = function(fd, mode, offset, length)
            if result == 0 || errno != EINTR { return result }
        }
    }

    /// Looks up a C library function by name (already loaded into the process).
    static func lookUp<T>(_ name: String, as type: T.Type = T.self) -> T? {
        guard let process = dlopen(nil, RTLD_NOW),
              let symbol = dlsym(process, name)
        else { return nil }
        return unsafeBitCast(symbol, to: type)
    }

    /// Waits until `fd` is ready for `events` (for descriptors left in non-blocking mode).
    static func waitUntilReady(_ fd: Int32, events: Int16) {
        var entry = pollfd(fd: fd, events: events, revents: 0)
        _ = poll(&entry, 1, -1)
    }
}
