import Foundation

/// A real NBD server (nbdkit, qemu-nbd or nbd-server) on a private Unix socket.
///
/// It lives in its own temp folder and is ended by pid in `stop()`, which `deinit` also
/// calls, so a failing test does not leave servers behind.
public final class ServerProcess: @unchecked Sendable {
    public let directory: TemporaryDirectory
    public let socketPath: String
    public let exportName: String
    /// The pid to signal (the daemon's own pid for servers that fork).
    public private(set) var pid: pid_t
    /// The process we started (for servers that fork, the parent that exits early).
    private var launcherPid: pid_t
    private var stopped = false
    /// How it was started, for `restart`.
    private var command: [String] = []
    private var pidFile = ""
    /// Ready only once a connection succeeds (see `nbdServer`).
    private var probesSocket = false

    /// `nbd+unix:///EXPORT?socket=PATH`
    /// The loopback TCP port, for servers started with `nbdkitTCP`.
    public private(set) var tcpPort: Int?

    /// `nbd+unix:///EXPORT?socket=PATH`, or `nbd://127.0.0.1:PORT/EXPORT` for TCP servers.
    public var uri: String {
        if let tcpPort { return "nbd://127.0.0.1:\(tcpPort)/\(exportName)" }
        return "nbd+unix:///\(exportName)?socket=\(socketPath)"
    }

    /// The same export over TLS: `nbds+unix:///EXPORT?socket=PATH&QUERY` or
    /// `nbds://127.0.0.1:PORT/EXPORT?QUERY`, `query` being e.g. `tls-certificates=DIR`.
    public func tlsURI(_ query: String = "") -> String {
        if let tcpPort { return "nbds://127.0.0.1:\(tcpPort)/\(exportName)" + (query.isEmpty ? "" : "?\(query)") }
        return "nbds+unix:///\(exportName)?socket=\(socketPath)" + (query.isEmpty ? "" : "&\(query)")
    }

    private init(directory: TemporaryDirectory, socketPath: String, exportName: String, pid: pid_t) {
        self.directory = directory
        self.socketPath = socketPath
        self.exportName = exportName
        self.pid = pid
        self.launcherPid = pid
    }

    deinit { stop() }

    // MARK: Servers

    /// `nbdkit -f -U SOCK -P PID [--filter=F]... ARGS...`, e.g. `nbdkit(["memory", "1M"])`.
    public static func nbdkit(_ arguments: [String], filters: [String] = [], options: [String] = []) throws -> ServerProcess {
        let directory = try TemporaryDirectory(prefix: "nbdkit")
        let socket = directory.file("s.sock"), pidFile = directory.file("s.pid")
        let command = ["nbdkit", "-f", "--exit-with-parent", "-U", socket, "-P", pidFile]
            + options + filters.map { "--filter=\($0)" } + arguments
        return try start(command, directory: directory, socket: socket, pidFile: pidFile, exportName: "", daemonizes: false)
    }

    /// `nbdkit -f -i 127.0.0.1 -p PORT ...` on a free loopback port (tried until one binds).
    public static func nbdkitTCP(_ arguments: [String], filters: [String] = [], options: [String] = []) throws -> ServerProcess {
        var lastError: (any Error)?
        for _ in 0..<8 {
            let port = Int.random(in: 20_000...60_000)
            let directory = try TemporaryDirectory(prefix: "nbdkit-tcp")
            let pidFile = directory.file("s.pid")
            let command = ["nbdkit", "-f", "--exit-with-parent", "-i", "127.0.0.1", "-p", String(port), "-P", pidFile]
                + options + filters.map { "--filter=\($0)" } + arguments
            do {
                // The pid file stands in for the socket file: nbdkit writes it once listening.
                let server = try start(command, directory: directory, socket: pidFile, pidFile: pidFile, exportName: "", daemonizes: false)
                server.tcpPort = port
                return server
            } catch {
                lastError = error
            }
        }
        throw lastError ?? TestSupportError("no free port for nbdkit")
    }

    /// `qemu-nbd -t -k SOCK --pid-file=PID -f FORMAT [ARGS...] IMAGE`; without `image`,
    /// a sparse raw file of `imageSize` bytes is made in the server's folder.
    public static func qemuNBD(image: String? = nil, imageSize: UInt64 = 64 << 20, format: String = "raw",
                               arguments: [String] = [], exportName: String = "") throws -> ServerProcess {
        let directory = try TemporaryDirectory(prefix: "qemu-nbd")
        let image = try image ?? makeImage(in: directory, size: imageSize)
        let socket = directory.file("q.sock"), pidFile = directory.file("q.pid")
        var command = ["qemu-nbd", "-t", "-k", socket, "--pid-file=\(pidFile)", "-f", format]
        if !exportName.isEmpty { command += ["-x", exportName] }
        command += arguments + [image]
        return try start(command, directory: directory, socket: socket, pidFile: pidFile, exportName: exportName, daemonizes: false)
    }

    /// nbd-server serving `file` (or a new sparse file of `imageSize` bytes) as export
    /// `disk`, from a config file. It forks itself; the pid file names the daemon.
    public static func nbdServer(file: String? = nil, imageSize: UInt64 = 64 << 20, exportName: String = "disk",
                                 readOnly: Bool = false) throws -> ServerProcess {
        let directory = try TemporaryDirectory(prefix: "nbd-server")
        let file = try file ?? makeImage(in: directory, size: imageSize)
        let socket = directory.file("n.sock"), pidFile = directory.file("n.pid"), config = directory.file("config")
        let text = """
            [generic]
            unixsock = \(socket)
            allowlist = true
            [\(exportName)]
            exportname = \(file)
            flush = true
            fua = true
            trim = true
            readonly = \(readOnly)

            """
        try text.write(toFile: config, atomically: true, encoding: .utf8)
        let command = ["nbd-server", "-C", config, "-p", pidFile]
        // nbd-server binds its socket (making the file) a moment before it listens; a
        // connection in between is refused, so readiness is a connection that succeeds.
        return try start(command, directory: directory, socket: socket, pidFile: pidFile, exportName: exportName,
                         daemonizes: true, probesSocket: true)
    }

    /// A sparse file of `size` bytes named `disk.img` in `directory`.
    public static func makeImage(in directory: TemporaryDirectory, size: UInt64) throws -> String {
        let path = directory.file("disk.img")
        guard FileManager.default.createFile(atPath: path, contents: nil), truncate(path, off_t(size)) == 0 else {
            throw TestSupportError("cannot make \(path): \(String(cString: strerror(errno)))")
        }
        return path
    }

    private static func start(_ command: [String], directory: TemporaryDirectory, socket: String, pidFile: String,
                              exportName: String, daemonizes: Bool, probesSocket: Bool = false) throws -> ServerProcess {
        let logPath = directory.file("server.log")
        // Spawned from a thread that never ends: nbdkit's --exit-with-parent follows the
        // spawning *thread*, and async tests run on pool threads that come and go.
        let launcher = try LauncherThread.run { try Spawn.start(command, outputPath: logPath, errorPath: logPath) }
        let server = ServerProcess(directory: directory, socketPath: socket, exportName: exportName, pid: launcher)
        server.command = command
        server.pidFile = pidFile
        server.probesSocket = probesSocket
        try server.waitUntilListening(daemonizes: daemonizes)
        return server
    }

    private func waitUntilListening(daemonizes: Bool) throws {
        let deadline = ContinuousClock.now + .seconds(20)
        while true {
            if let text = try? String(contentsOfFile: pidFile, encoding: .utf8),
               let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 0,
               FileManager.default.fileExists(atPath: socketPath), !probesSocket || Self.accepts(socketPath) {
                self.pid = pid
                return
            }
            if !daemonizes && Spawn.poll(launcherPid) != nil || ContinuousClock.now > deadline {
                let log = self.log
                stop()
                throw TestSupportError("\(command.joined(separator: " ")) did not start: \(log)")
            }
            usleep(10_000)
        }
    }

    /// Kills the server at once (SIGKILL), as a crash would, and waits until it is gone.
    public func crash() {
        signal(SIGKILL)
        let deadline = ContinuousClock.now + .seconds(10)
        while isRunning && ContinuousClock.now < deadline { usleep(10_000) }
        _ = Spawn.poll(launcherPid)
    }

    /// Starts the server again on the same socket, with the same command, or with
    /// `arguments` in place of the trailing ones (another export size, say). nbdkit only.
    public func restart(replacingArguments arguments: [String]? = nil) throws {
        if let arguments { command = Array(command.dropLast(arguments.count)) + arguments }
        unlink(socketPath)
        unlink(pidFile)
        let logPath = directory.file("server.log")
        let command = self.command
        launcherPid = try LauncherThread.run { try Spawn.start(command, outputPath: logPath, errorPath: logPath) }
        try waitUntilListening(daemonizes: false)
    }

    /// Whether a connection to the Unix socket `path` succeeds (it is closed at once).
    private static func accepts(_ path: String) -> Bool {
        guard let fd = try? UnixSocket.connect(to: path) else { return false }
        close(fd)
        return true
    }

    /// The server's own output so far, for test failure messages.
    public var log: String {
        (try? String(contentsOfFile: directory.file("server.log"), encoding: .utf8)) ?? ""
    }

    /// Whether the server process still exists.
    public var isRunning: Bool { kill(pid, 0) == 0 && !isZombie }

    private var isZombie: Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return true }
        return stat.contains(") Z ")
    }

    /// Sends `signal` to the server.
    public func signal(_ signal: Int32) { kill(pid, signal) }

    /// Ends the server by pid (SIGTERM, then SIGKILL after 5 s) and removes its folder.
    public func stop() {
        guard !stopped else { return }
        stopped = true
        if pid > 0 { kill(pid, SIGTERM) }
        let deadline = ContinuousClock.now + .seconds(5)
        while isRunning && ContinuousClock.now < deadline { usleep(10_000) }
        if isRunning { kill(pid, SIGKILL) }
        if Spawn.poll(launcherPid) == nil {
            kill(launcherPid, SIGKILL)
            _ = waitpid(launcherPid, nil, 0)
        }
        directory.remove()
    }
}
