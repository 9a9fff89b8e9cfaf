import Foundation
import NBD
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A fake NBD server for tests, for what real servers will not do: malformed or hostile replies.
///
/// It listens on a Unix socket in a private temp folder and accepts one connection on a
/// background thread with plain POSIX sockets. It performs a correct fixed newstyle
/// handshake (or one the test scripts), then hands every request to the test's `script`,
/// which says what to send back. Every wait polls with a timeout and wakes when `stop()` is
/// called or the client goes away, so the server cannot hang a test; `stop()` (also run by
/// `deinit`) wakes the thread, joins it and removes the folder.
///
/// ```swift
/// let server = try ScriptedServer { request in
///     [.send(NBDWire.simpleReply(cookie: request.cookie)), .close]
/// }
/// defer { server.stop() }
/// let connection = try await NBDConnection.connect(to: NBDURI.parse(server.uri))
/// ```
public final class ScriptedServer: @unchecked Sendable {
    /// How the standard handshake answers.
    public struct Configuration: Sendable {
        /// The export size announced in `NBD_INFO_EXPORT`.
        public var exportSize: UInt64 = 1 << 20
        /// The transmission flags announced with the export.
        public var transmissionFlags: NBDTransmissionFlags = [.hasFlags, .sendFlush, .sendWriteZeroes, .sendTrim, .canMultiConn]
        /// Whether `NBD_OPT_STRUCTURED_REPLY` is acknowledged; when false it (and the meta
        /// context options) get `NBD_REP_ERR_UNSUP`.
        public var structuredReplies = true
        /// The id given to `base:allocation`.
        public var metaContextID: UInt32 = 1
        /// Longest wait for the client at any one step (connecting, each read, each write);
        /// then the server gives up and closes.
        public var timeout: Duration = .seconds(30)

        public init() {}
    }

    /// What the standard or a scripted handshake leads to.
    public enum HandshakeOutcome: Sendable {
        /// Go on to transmission: requests are handed to the script.
        case transmission
        /// Close the connection (gracefully: shut down writing, then wait for the client to go).
        case close
        /// Keep the connection open and say nothing until the client closes it or `stop()`.
        case hang
    }

    /// What the script does in answer to a request, in order.
    public enum Action: Sendable {
        /// Sends these bytes as they are.
        case send([UInt8])
        /// Waits a while, so that what was sent so far arrives on its own.
        case pause(milliseconds: Int)
        /// Closes the connection (shuts down writing, then waits for the client to go).
        case close
        /// Closes the connection at once without waiting for the client.
        case reset
    }

    /// Replaces the handshake: runs on the server thread with the accepted connection.
    public typealias Handshake = @Sendable (ScriptedConnection) throws -> HandshakeOutcome
    /// Answers one request: runs on the server thread; returning `[]` sends nothing (the
    /// request stays in flight on the client).
    public typealias Script = @Sendable (ScriptedRequest) throws -> [Action]

    public let directory: TemporaryDirectory
    public let socketPath: String
    public let configuration: Configuration
    private let core: Core
    private var stopped = false

    /// `nbd+unix:///?socket=PATH`
    public var uri: String { "nbd+unix:///?socket=\(socketPath)" }

    /// Starts listening at once; a connection is accepted in the background.
    /// `script` comes first so that a trailing closure is the script; pass `handshake:` by label.
    public init(_ configuration: Configuration = Configuration(), script: @escaping Script = { _ in [] },
                handshake: Handshake? = nil) throws {
        self.configuration = configuration
        directory = try TemporaryDirectory(prefix: "nbd-scripted")
        socketPath = directory.file("s.sock")
        let listener: Int32
        let wake: (read: Int32, write: Int32)
        do {
            listener = try Socket.listen(at: socketPath)
            wake = try Socket.pipe()
        } catch {
            directory.remove()
            throw error
        }
        core = Core(configuration: configuration, listener: listener, wake: wake, socketPath: socketPath,
                    handshake: handshake, script: script)
        let core = self.core
        let thread = Thread { core.run() }
        thread.name = "ScriptedServer"
        thread.start()
    }

    deinit { stop() }

    /// Requests received so far, in order (`NBD_CMD_DISC` is not handed to the script or kept).
    public var requests: [ScriptedRequest] { core.locked { $0.requests } }

    /// Option codes the client sent during the standard handshake, in order.
    public var options: [UInt32] { core.locked { $0.options } }

    /// Why the server stopped talking, if not by the script's or the client's choice
    /// (a timeout, a malformed request, an error thrown by the script), for test messages.
    public var failure: String? { core.locked { $0.failure } }

    /// Whether the server thread has finished (the connection is closed).
    public var isFinished: Bool { core.locked { $0.finished } }

    /// Waits up to `timeout` for the server thread to finish by itself (the client went
    /// away or the script closed); returns whether it did.
    @discardableResult
    public func waitUntilFinished(timeout: Duration = .seconds(10)) -> Bool {
        let deadline = ContinuousClock.now + timeout
        while !isFinished {
            if ContinuousClock.now > deadline { return false }
            usleep(5_000)
        }
        return true
    }

    /// Wakes the server thread, waits for it to close its sockets and end, removes the folder.
    public func stop() {
        guard !stopped else { return }
        stopped = true
        core.requestStop()
        // The thread polls in short slices, so it notices the stop within ~100 ms.
        if core.done.wait(timeout: .now() + 10) == .success {
            core.closeWakePipe()
        }
        directory.remove()
    }
}

/// One request the scripted server received.
public struct ScriptedRequest: Sendable {
    /// 0 for the first request on the connection, then 1, 2...
    public var index: Int
    public var flags: UInt16
    /// The raw command type; `command` is nil when it is not one the library knows.
    public var type: UInt16
    public var command: NBDCommandType? { NBDCommandType(rawValue: type) }
    public var cookie: UInt64
    public var offset: UInt64
    public var length: UInt32
    /// The data of a WRITE, empty otherwise.
    public var payload: [UInt8]
}

/// The accepted socket, as a scripted handshake sees it. Use it only on the server thread,
/// inside the `Handshake` closure.
public final class ScriptedConnection: @unchecked Sendable {
    fileprivate let fd: Int32
    fileprivate let core: Core
    public let configuration: ScriptedServer.Configuration
    /// Whether the standard handshake agreed to structured replies.
    public fileprivate(set) var structuredReplies = false

    fileprivate init(fd: Int32, core: Core) {
        self.fd = fd
        self.core = core
        self.configuration = core.configuration
    }

    // MARK: Bytes

    /// Sends `bytes`; throws when the client has gone, the server is stopping or it takes too long.
    public func send(_ bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let count = bytes[sent...].withUnsafeBytes { raw in
                posixSend(fd, raw.baseAddress, raw.count, Socket.noSignal)
            }
            if count > 0 {
                sent += count
            } else if count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
                try core.wait(for: fd, events: Int16(POLLOUT))
            } else if count < 0 && (errno == EPIPE || errno == ECONNRESET) {
                throw ScriptedServerError.clientClosed
            } else {
                throw ScriptedServerError("send failed: \(String(cString: strerror(errno)))")
            }
        }
    }

    /// Receives exactly `count` bytes; throws when the client closes first.
    public func receive(_ count: Int) throws -> [UInt8] {
        guard let bytes = try receiveUnlessClosed(count) else {
            throw ScriptedServerError.clientClosed
        }
        return bytes
    }

    /// Receives exactly `count` bytes, or nil when the client closed before the first one.
    public func receiveUnlessClosed(_ count: Int) throws -> [UInt8]? {
        var bytes = [UInt8](repeating: 0, count: count)
        var received = 0
        while received < count {
            let got = bytes[received...].withUnsafeMutableBytes { raw in
                recv(fd, raw.baseAddress, raw.count, 0)
            }
            if got > 0 {
                received += got
            } else if got == 0 {
                if received == 0 { return nil }
                throw ScriptedServerError.clientClosed
            } else if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR {
                try core.wait(for: fd, events: Int16(POLLIN))
            } else if errno == ECONNRESET {
                throw ScriptedServerError.clientClosed
            } else {
                throw ScriptedServerError("recv failed: \(String(cString: strerror(errno)))")
            }
        }
        return bytes
    }

    /// Waits until the client closes the connection (or the server stops or times out),
    /// discarding whatever it sends.
    public func waitUntilClientCloses() {
        while true {
            do {
                if try receiveUnlessClosed(1) == nil { return }
            } catch {
                return
            }
        }
    }

    // MARK: Handshake pieces

    /// Sends `NBDMAGIC`, `IHAVEOPT` and the handshake flags (FIXED_NEWSTYLE|NO_ZEROES by default).
    public func sendGreeting(flags: UInt16 = NBDWire.handshakeFixedNewstyle | NBDWire.handshakeNoZeroes) throws {
        try send(NBDWire.be(NBDMagic.initPassword) + NBDWire.be(NBDMagic.optionRequest) + NBDWire.be(flags))
    }

    /// Reads the client's 32-bit flags.
    public func receiveClientFlags() throws -> UInt32 {
        NBDWire.integer(try receive(4), as: UInt32.self)
    }

    /// Reads one option: its code and data. Throws on a wrong magic or data over 64 KiB.
    public func receiveOption() throws -> (option: UInt32, data: [UInt8]) {
        let header = try receive(16)
        let magic = NBDWire.integer(header[0..<8], as: UInt64.self)
        guard magic == NBDMagic.optionRequest else {
            throw ScriptedServerError("client option has wrong magic 0x\(String(magic, radix: 16))")
        }
        let option = NBDWire.integer(header[8..<12], as: UInt32.self)
        let length = NBDWire.integer(header[12..<16], as: UInt32.self)
        guard length <= 65536 else { throw ScriptedServerError("client option \(option) has \(length) bytes of data") }
        let data = try receive(Int(length))
        core.locked { $0.options.append(option) }
        return (option, data)
    }

    /// Sends one option reply.
    public func sendOptionReply(option: UInt32, type: UInt32, data: [UInt8] = []) throws {
        try send(NBDWire.optionReply(option: option, type: type, data: data))
    }

    /// The whole standard handshake: greeting, client flags, then options until GO,
    /// EXPORT_NAME (`.transmission`) or ABORT (`.close`).
    public func standardHandshake() throws -> ScriptedServer.HandshakeOutcome {
        try sendGreeting()
        let clientFlags = try receiveClientFlags()
        return try answerOptions(noZeroes: clientFlags & UInt32(NBDWire.handshakeNoZeroes) != 0)
    }

    /// Answers options as a correct server would, until GO, EXPORT_NAME or ABORT.
    public func answerOptions(noZeroes: Bool = true) throws -> ScriptedServer.HandshakeOutcome {
        while true {
            let (option, data) = try receiveOption()
            switch option {
            case NBDOption.structuredReply.rawValue:
                if configuration.structuredReplies {
                    structuredReplies = true
                    try sendOptionReply(option: option, type: NBDOptionReplyType.ack)
                } else {
                    try sendOptionReply(option: option, type: NBDWire.repErrUnsup)
                }
            case NBDOption.setMetaContext.rawValue, NBDOption.listMetaContext.rawValue:
                guard configuration.structuredReplies else {
                    try sendOptionReply(option: option, type: NBDWire.repErrUnsup)
                    continue
                }
                let queries = Self.metaContextQueries(data)
                let wanted = option == NBDOption.listMetaContext.rawValue && queries.isEmpty
                    || queries.contains { $0 == NBDMetaContext.baseAllocation || $0 == "base:" }
                if wanted {
                    try sendOptionReply(option: option, type: NBDOptionReplyType.metaContext,
                                        data: NBDWire.be(configuration.metaContextID) + Array(NBDMetaContext.baseAllocation.utf8))
                }
                try sendOptionReply(option: option, type: NBDOptionReplyType.ack)
            case NBDOption.go.rawValue, NBDOption.info.rawValue:
                try sendOptionReply(option: option, type: NBDOptionReplyType.info,
                                    data: NBDWire.be(UInt16(0)) + NBDWire.be(configuration.exportSize)
                                        + NBDWire.be(configuration.transmissionFlags.rawValue))
                try sendOptionReply(option: option, type: NBDOptionReplyType.ack)
                if option == NBDOption.go.rawValue { return .transmission }
            case NBDOption.exportName.rawValue:
                try send(NBDWire.be(configuration.exportSize) + NBDWire.be(configuration.transmissionFlags.rawValue)
                         + (noZeroes ? [] : [UInt8](repeating: 0, count: 124)))
                return .transmission
            case NBDOption.abort.rawValue:
                try sendOptionReply(option: option, type: NBDOptionReplyType.ack)
                return .close
            default:
                try sendOptionReply(option: option, type: NBDWire.repErrUnsup)
            }
        }
    }

    /// The query strings of a SET/LIST_META_CONTEXT option's data (empty when malformed).
    private static func metaContextQueries(_ data: [UInt8]) -> [String] {
        var position = 0
        func take(_ count: Int) -> ArraySlice<UInt8>? {
            guard count >= 0, position + count <= data.count else { return nil }
            defer { position += count }
            return data[position..<position + count]
        }
        guard let nameLength = take(4).map({ NBDWire.integer($0, as: UInt32.self) }),
              take(Int(nameLength)) != nil,
              let count = take(4).map({ NBDWire.integer($0, as: UInt32.self) })
        else { return [] }
        var queries: [String] = []
        for _ in 0..<min(count, 1024) {
            guard let length = take(4).map({ NBDWire.integer($0, as: UInt32.self) }),
                  let query = take(Int(length))
            else { return queries }
            queries.append(String(decoding: query, as: UTF8.self))
        }
        return queries
    }

    // MARK: Closing

    /// Shuts down writing so the client sees end of file, waits (briefly) for it to close,
    /// then closes the socket.
    fileprivate func closeGracefully() {
        shutdown(fd, Int32(SHUT_WR))
        core.graceful = true
        waitUntilClientCloses()
        close(fd)
    }
}

/// Builders for raw NBD wire messages, big-endian as the protocol wants.
public enum NBDWire {
    // Structured reply chunk types and flags.
    public static let chunkNone: UInt16 = 0
    public static let chunkOffsetData: UInt16 = 1
    public static let chunkOffsetHole: UInt16 = 2
    public static let chunkBlockStatus: UInt16 = 5
    public static let chunkError: UInt16 = 0x8001
    public static let chunkErrorOffset: UInt16 = 0x8002
    public static let flagDone: UInt16 = 1

    // Handshake flags and option reply errors.
    public static let handshakeFixedNewstyle: UInt16 = 1
    public static let handshakeNoZeroes: UInt16 = 2
    public static let repErrUnsup: UInt32 = 0x8000_0001
    public static let repErrPolicy: UInt32 = 0x8000_0002

    /// `value` as big-endian bytes.
    public static func be<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
        withUnsafeBytes(of: value.bigEndian) { Array($0) }
    }

    /// The big-endian integer at the start of `bytes`.
    public static func integer<T: FixedWidthInteger, C: Collection<UInt8>>(_ bytes: C, as: T.Type = T.self) -> T {
        var value: T = 0
        for byte in bytes.prefix(MemoryLayout<T>.size) { value = value << 8 | T(byte) }
        return value
    }

    /// `count` bytes of `byte`.
    public static func bytes(_ count: Int, _ byte: UInt8 = 0xAB) -> [UInt8] {
        [UInt8](repeating: byte, count: count)
    }

    // MARK: Transmission replies

    /// A simple reply header (magic 0x67446698, error, cookie), then `data` (a READ payload).
    public static func simpleReply(cookie: UInt64, error: UInt32 = 0, data: [UInt8] = [],
                                   magic: UInt32 = NBDMagic.simpleReply) -> [UInt8] {
        be(magic) + be(error) + be(cookie) + data
    }

    /// A structured reply chunk header (magic 0x668e33ef, flags, type, cookie, length).
    public static func chunkHeader(cookie: UInt64, type: UInt16, flags: UInt16 = 0, length: UInt32,
                                   magic: UInt32 = NBDMagic.structuredReply) -> [UInt8] {
        be(magic) + be(flags) + be(type) + be(cookie) + be(length)
    }

    /// A whole chunk: header with `payload`'s length (unless `length` overrides it), then `payload`.
    public static func chunk(cookie: UInt64, type: UInt16, flags: UInt16 = 0, length: UInt32? = nil,
                             payload: [UInt8] = []) -> [UInt8] {
        chunkHeader(cookie: cookie, type: type, flags: flags, length: length ?? UInt32(payload.count)) + payload
    }

    /// `NBD_REPLY_TYPE_NONE` with the DONE flag: ends a structured reply.
    public static func doneChunk(cookie: UInt64) -> [UInt8] {
        chunk(cookie: cookie, type: chunkNone, flags: flagDone)
    }

    /// `NBD_REPLY_TYPE_OFFSET_DATA`: `data` at `offset`.
    public static func dataChunk(cookie: UInt64, offset: UInt64, data: [UInt8], done: Bool = false) -> [UInt8] {
        chunk(cookie: cookie, type: chunkOffsetData, flags: done ? flagDone : 0, payload: be(offset) + data)
    }

    /// `NBD_REPLY_TYPE_OFFSET_HOLE`: `length` zero bytes at `offset`.
    public static func holeChunk(cookie: UInt64, offset: UInt64, length: UInt32, done: Bool = false) -> [UInt8] {
        chunk(cookie: cookie, type: chunkOffsetHole, flags: done ? flagDone : 0, payload: be(offset) + be(length))
    }

    /// `NBD_REPLY_TYPE_BLOCK_STATUS` for `contextID` with (length, flags) extents.
    public static func blockStatusChunk(cookie: UInt64, contextID: UInt32 = 1, extents: [(length: UInt32, flags: UInt32)],
                                        done: Bool = true) -> [UInt8] {
        chunk(cookie: cookie, type: chunkBlockStatus, flags: done ? flagDone : 0,
              payload: be(contextID) + extents.flatMap { be($0.length) + be($0.flags) })
    }

    /// `NBD_REPLY_TYPE_ERROR` (or `_OFFSET` when `offset` is given) with `errno` and `message`;
    /// `messageLength` and `length` override the announced lengths for hostile tests.
    public static func errorChunk(cookie: UInt64, errno: UInt32, message: String = "", offset: UInt64? = nil,
                                  done: Bool = true, messageLength: UInt16? = nil, length: UInt32? = nil) -> [UInt8] {
        let text = Array(message.utf8)
        var payload = be(errno) + be(messageLength ?? UInt16(text.count)) + text
        if let offset { payload += be(offset) }
        return chunk(cookie: cookie, type: offset == nil ? chunkError : chunkErrorOffset, flags: done ? flagDone : 0,
                     length: length, payload: payload)
    }

    // MARK: Handshake messages

    /// An option reply (magic 0x0003e889045565a9, option, type, length, data); `length`
    /// overrides the announced length.
    public static func optionReply(option: UInt32, type: UInt32, data: [UInt8] = [], length: UInt32? = nil) -> [UInt8] {
        be(NBDMagic.optionReply) + be(option) + be(type) + be(length ?? UInt32(data.count)) + data
    }
}

/// A failure inside the scripted server, kept in `ScriptedServer.failure`.
public struct ScriptedServerError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }

    static let clientClosed = ScriptedServerError("the client closed the connection")
    static let stopped = ScriptedServerError("the server was stopped")
}

// MARK: - Internals

/// The state shared by the test's thread and the server thread.
private final class Core: @unchecked Sendable {
    struct Shared {
        var requests: [ScriptedRequest] = []
        var options: [UInt32] = []
        var failure: String?
        var finished = false
        var stopRequested = false
    }

    let configuration: ScriptedServer.Configuration
    private let listener: Int32
    private let wake: (read: Int32, write: Int32)
    private let socketPath: String
    private let handshake: ScriptedServer.Handshake?
    private let script: ScriptedServer.Script
    private let lock = NSLock()
    private var shared = Shared()
    /// Signalled when the thread has closed its sockets and is about to end.
    let done = DispatchSemaphore(value: 0)
    /// Set while closing gracefully: waits are short then, so a client that never closes
    /// cannot keep the thread.
    var graceful = false

    init(configuration: ScriptedServer.Configuration, listener: Int32, wake: (read: Int32, write: Int32), socketPath: String,
         handshake: ScriptedServer.Handshake?, script: @escaping ScriptedServer.Script) {
        self.configuration = configuration
        self.listener = listener
        self.wake = wake
        self.socketPath = socketPath
        self.handshake = handshake
        self.script = script
    }

    func locked<T>(_ body: (inout Shared) -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        return body(&shared)
    }

    func requestStop() {
        locked { $0.stopRequested = true }
        var byte: UInt8 = 1
        _ = write(wake.write, &byte, 1)
    }

    func closeWakePipe() {
        close(wake.read)
        close(wake.write)
    }

    /// Waits until `fd` is ready for `events`; throws when stopping, on timeout, or on a hang-up
    /// with nothing left to read.
    func wait(for fd: Int32, events: Int16) throws {
        let limit = graceful ? Duration.seconds(2) : configuration.timeout
        let deadline = ContinuousClock.now + limit
        while true {
            if locked({ $0.stopRequested }) { throw ScriptedServerError.stopped }
            var fds = [pollfd(fd: fd, events: events, revents: 0), pollfd(fd: wake.read, events: Int16(POLLIN), revents: 0)]
            let result = poll(&fds, 2, 100)
            if result < 0 && errno != EINTR {
                throw ScriptedServerError("poll failed: \(String(cString: strerror(errno)))")
            }
            if fds[1].revents != 0 { throw ScriptedServerError.stopped }
            if fds[0].revents != 0 { return } // Ready, or an error/hang-up the next call reports.
            if ContinuousClock.now > deadline {
                throw ScriptedServerError("timed out after \(limit) waiting for the client")
            }
        }
    }

    /// The server thread: accept, handshake, then answer requests with the script.
    func run() {
        defer {
            locked { $0.finished = true }
            done.signal()
        }
        let fd: Int32
        do {
            fd = try accept()
        } catch {
            close(listener)
            unlink(socketPath)
            record(error)
            return
        }
        close(listener)
        unlink(socketPath)
        let connection = ScriptedConnection(fd: fd, core: self)
        var reset = false
        do {
            let outcome = try handshake?(connection) ?? connection.standardHandshake()
            switch outcome {
            case .transmission: reset = try transmit(connection)
            case .close: break
            case .hang: connection.waitUntilClientCloses()
            }
        } catch {
            record(error)
        }
        if reset || locked({ $0.stopRequested }) {
            close(fd)
        } else {
            connection.closeGracefully()
        }
    }

    private func record(_ error: any Error) {
        if let error = error as? ScriptedServerError, error == .clientClosed || error == .stopped { return }
        locked { $0.failure = $0.failure ?? "\(error)" }
    }

    private func accept() throws -> Int32 {
        try wait(for: listener, events: Int16(POLLIN))
        let fd = posixAccept(listener)
        guard fd >= 0 else { throw ScriptedServerError("accept failed: \(String(cString: strerror(errno)))") }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        return fd
    }

    /// Reads requests and plays the script's actions; returns whether to close at once.
    private func transmit(_ connection: ScriptedConnection) throws -> Bool {
        var index = 0
        while true {
            guard let header = try connection.receiveUnlessClosed(28) else { return false }
            let magic = NBDWire.integer(header[0..<4], as: UInt32.self)
            guard magic == NBDMagic.request else {
                throw ScriptedServerError("request has wrong magic 0x\(String(magic, radix: 16))")
            }
            var request = ScriptedRequest(
                index: index,
                flags: NBDWire.integer(header[4..<6]), type: NBDWire.integer(header[6..<8]),
                cookie: NBDWire.integer(header[8..<16]), offset: NBDWire.integer(header[16..<24]),
                length: NBDWire.integer(header[24..<28]), payload: [])
            if request.command == .disconnect { return false }
            if request.command == .write {
                request.payload = try connection.receive(Int(request.length))
            }
            index += 1
            let received = request
            locked { $0.requests.append(received) }
            for action in try script(request) {
                switch action {
                case .send(let bytes): try connection.send(bytes)
                case .pause(let milliseconds): usleep(UInt32(max(0, milliseconds)) * 1000)
                case .close: return false
                case .reset: return true
                }
            }
        }
    }
}

/// Plain POSIX socket set-up.
private enum Socket {
    #if canImport(Glibc)
    static let stream = Int32(SOCK_STREAM.rawValue)
    static let noSignal = Int32(MSG_NOSIGNAL)
    #else
    static let stream = SOCK_STREAM
    static let noSignal: Int32 = 0
    #endif

    static func listen(at path: String) throws -> Int32 {
        try UnixSocket.listen(at: path)
    }

    static func pipe() throws -> (read: Int32, write: Int32) {
        var fds: [Int32] = [-1, -1]
        guard posixPipe(&fds) == 0 else { throw ScriptedServerError("pipe failed: \(String(cString: strerror(errno)))") }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        return (fds[0], fds[1])
    }
}

// File-level wrappers, so that members named like these calls do not hide them.
private func posixSend(_ fd: Int32, _ buffer: UnsafeRawPointer?, _ count: Int, _ flags: Int32) -> Int {
    send(fd, buffer, count, flags)
}

private func posixAccept(_ fd: Int32) -> Int32 { accept(fd, nil, nil) }


private func posixPipe(_ fds: inout [Int32]) -> Int32 { pipe(&fds) }
