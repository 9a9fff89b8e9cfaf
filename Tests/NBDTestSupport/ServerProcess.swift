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
    private let process: Process?
    private var stopped = false

    /// `nbd+unix:///EXPORT?socket=PATH`
    public var uri: String { "nbd+unix:///\(exportName)?socket=\(socketPath)" }

    private init(directory: TemporaryDirectory, socketPath: String, exportName: String, pid: pid_t, process: Process?) {
        self.directory = directory
        self.socketPath = socketPath
        self.exportName = exportName
        self.pid = pid
        self.process = process
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

    /// `qemu-nbd -t -k SOCK --pid-file=PID -f FORMAT [ARGS...] IMAGE`.
    public static func qemuNBD(image: String, format: String = "raw", arguments: [String] = [], exportName: String = "") throws -> ServerProcess {
        let directory = try TemporaryDirectory(prefix: "qemu-nbd")
        let socket = directory.file("q.sock"), pidFile = directory.file("q.pid")
        var command = ["qemu-nbd", "-t", "-k", socket, "--pid-file=\(pidFile)", "-f", format]
        if !exportName.isEmpty { command += ["-x", exportName] }
        command += arguments + [image]
        return try start(command, directory: directory, socket: socket, pidFile: pidFile, exportName: exportName, daemonizes: false)
    }

    /// nbd-server serving `file` as export `disk` from a config file (it forks itself).
    public static func nbdServer(file: String, exportName: String = "disk", readOnly: Bool = false) throws -> ServerProcess {
        let directory = try TemporaryDirectory(prefix: "nbd-server")
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
        return try start(command, directory: directory, socket: socket, pidFile: pidFile, exportName: exportName, daemonizes: true)
    }

    private static func start(_ command: [String], directory: TemporaryDirectory, socket: String, pidFile: String,
                              exportName: String, daemonizes: Bool) throws -> ServerProcess {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try CommandRunner.resolve(command[0]))
        process.arguments = Array(command.dropFirst())
        let logPath = directory.file("server.log")
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle(forWritingAtPath: logPath)
        process.standardError = FileHandle(forWritingAtPath: logPath)
        try process.run()
        let server = ServerProcess(directory: directory, socketPath: socket, exportName: exportName,
                                   pid: process.processIdentifier, process: process)
        let deadline = ContinuousClock.now + .seconds(20)
        while true {
            if let text = try? String(contentsOfFile: pidFile, encoding: .utf8),
               let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 0,
               FileManager.default.fileExists(atPath: socket) {
                server.pid = pid
                return server
            }
            if !daemonizes && !process.isRunning || ContinuousClock.now > deadline {
                let log = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
                server.stop()
                throw TestSupportError("\(command.joined(separator: " ")) did not start: \(log)")
            }
            usleep(10_000)
        }
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
        if let process, process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        directory.remove()
    }
}
