import NBD
import NIOCore
import NIOPosix
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A server nbdtop starts itself for `[ CMD ARGS… ]`, reached at `uri`.
///
/// nbdtop makes a private folder (mode 0700) with a listening Unix socket in it and starts
/// the command with that socket as fd 3, `LISTEN_FDS=1` and `LISTEN_PID` set to the
/// command's own pid: systemd socket activation, which nbdkit and qemu-nbd understand
/// (they then must not be given `-U`, `-k`, `-p` or `--run`). The server keeps listening,
/// so it can be connected to as many times as it allows (qemu-nbd needs `-e N` for more
/// than one client, and without `-t` it exits when its last client leaves).
///
/// The command runs through `/bin/sh -c 'LISTEN_PID=$$ exec "$@"'` (the pid is only known
/// after the fork), with an empty signal mask, default signal handlers, stdin from
/// /dev/null, and stdout and stderr both into a pipe that nbdtop passes through to its own
/// stderr (`CaptiveOutput`, which keeps the last lines for messages), or into `logPath`, so
/// that a server that prints cannot corrupt a copy to standard output. It stays in nbdtop's
/// process group, so Ctrl-C or a closed terminal ends it too.
///
/// `stop()` ends it (SIGTERM, then SIGKILL after a timeout), reaps it and removes the
/// folder; `deinit` does the same if nobody did.
public final class CaptiveServer: Sendable {
    /// How the server ended.
    public enum ExitStatus: Sendable, Equatable, CustomStringConvertible {
        case exited(Int32)
        case killed(signal: Int32)
        /// Something else in the process reaped it first.
        case unknown

        public var description: String {
            switch self {
            case .exited(let status): return "exited with status \(status)"
            case .killed(let signal): return "was killed by signal \(signal)"
            case .unknown: return "exited"
            }
        }
    }

    /// The command as given, `[ ]` not included.
    public let command: [String]
    /// The command quoted for messages, e.g. `nbdkit -r pattern 64M`.
    public let commandLine: String
    /// The private folder holding the socket.
    public let directory: String
    public let socketPath: String
    /// `nbd+unix:///?socket=PATH`, or `nbds+unix://` when the command turns TLS on (`CaptiveTLS`).
    public let uri: NBDURI
    /// The server's pid (the shell execs it, so the pid stays the same).
    public let pid: pid_t
    /// Where the server's stdout and stderr go, when not to nbdtop's stderr.
    public let logPath: String?

    private struct State {
        var exitStatus: ExitStatus?
        var stopped = false
    }

    private let state = Mutex(State())
    /// The server's output when it goes to nbdtop's stderr (no `logPath`).
    private let output: CaptiveOutput?

    private init(command: [String], commandLine: String, directory: String, socketPath: String, pid: pid_t, logPath: String?,
                 output: CaptiveOutput?) {
        self.output = output
        self.command = command
        self.commandLine = commandLine
        self.directory = directory
        self.socketPath = socketPath
        let tls = CaptiveTLS.parameters(for: command)
        self.uri = NBDURI(transport: .unix(path: socketPath), tls: tls != nil, tlsParameters: tls ?? NBDTLSParameters())
        self.pid = pid
        self.logPath = logPath
    }

    deinit {
        stopBlocking()
    }

    // MARK: Starting

    /// Starts `command` listening on a new private socket; throws `EndpointError` naming the
    /// command when it cannot be started. It does not wait for the server: `connect` (or a
    /// handshake failure followed by `explain`) tells whether it came up.
    ///
    /// `logPath` collects the server's stdout and stderr instead of nbdtop's stderr (for a TUI).
    public static func start(_ command: [String], logPath: String? = nil) throws -> CaptiveServer {
        guard let program = command.first, !program.isEmpty else {
            throw EndpointError(.connection, "captive server: no command between [ and ]")
        }
        let commandLine = quote(command)
        func failure(_ reason: String) -> EndpointError {
            EndpointError(.connection, "cannot start captive server `\(commandLine)`: \(reason)")
        }
        guard findExecutable(program) != nil else {
            throw failure("\(program): command not found")
        }

        let directory = try makePrivateDirectory(failure: failure)
        let socketPath = directory + "/nbd.sock"
        let listener: Int32
        do {
            listener = try listen(at: socketPath, failure: failure)
        } catch {
            removeTree(directory)
            throw error
        }
        defer { _ = Glibc.close(listener) }  // the server has its own copy on fd 3

        var outputPipe: [Int32] = [-1, -1]
        if logPath == nil {
            // Close-on-exec right away, so that no other child inherits the write end and keeps
            // the pipe open after the server exits. (Glibc's module does not export pipe2.)
            guard pipe(&outputPipe) == 0, fcntl(outputPipe[0], F_SETFD, FD_CLOEXEC) == 0,
                  fcntl(outputPipe[1], F_SETFD, FD_CLOEXEC) == 0 else {
                removeTree(directory)
                throw failure("pipe: \(systemErrorText(errno))")
            }
        }
        let pid: pid_t
        do {
            pid = try spawn(command, listener: listener, logPath: logPath, outputPipe: outputPipe[1], failure: failure)
        } catch {
            outputPipe.filter { $0 >= 0 }.forEach { _ = Glibc.close($0) }
            removeTree(directory)
            throw error
        }
        var output: CaptiveOutput?
        if logPath == nil {
            _ = Glibc.close(outputPipe[1])  // the server has its own copy
            output = CaptiveOutput(readingFrom: outputPipe[0])
        }
        return CaptiveServer(command: command, commandLine: commandLine, directory: directory,
                             socketPath: socketPath, pid: pid, logPath: logPath, output: output)
    }

    private static func makePrivateDirectory(failure: (String) -> EndpointError) throws -> String {
        var base = "/tmp"
        if let tmp = getenv("TMPDIR"), tmp.pointee != 0 { base = String(cString: tmp) }
        while base.count > 1 && base.hasSuffix("/") { base.removeLast() }
        var template = Array("\(base)/nbdtop-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) != nil }
        guard made else {
            throw failure("cannot make a private folder in \(base): \(systemErrorText(errno))")
        }
        return template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    /// A listening Unix socket at `path`, close-on-exec, on a descriptor above 3.
    private static func listen(at path: String, failure: (String) -> EndpointError) throws -> Int32 {
        guard let address = try? SocketAddress(unixDomainSocketPath: path) else {
            throw failure("socket path \(path) is too long (set TMPDIR to a shorter folder)")
        }
        var fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw failure("socket: \(systemErrorText(errno))") }
        let bound = address.withSockAddr { bind(fd, $0, socklen_t($1)) }
        guard bound == 0, Glibc.listen(fd, SOMAXCONN) == 0 else {
            let reason = systemErrorText(errno)
            _ = Glibc.close(fd)
            throw failure("cannot listen on \(path): \(reason)")
        }
        // dup2(3, 3) would leave close-on-exec set, so never let the socket be fd 3.
        if fd <= 3 {
            let moved = fcntl(fd, F_DUPFD_CLOEXEC, 4)
            let reason = systemErrorText(errno)
            _ = Glibc.close(fd)
            guard moved >= 0 else { throw failure("cannot move the socket descriptor: \(reason)") }
            fd = moved
        }
        return fd
    }

    private typealias CloseFromFunction = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
    private static let addCloseFrom: CloseFromFunction? = LinuxIO.lookUp("posix_spawn_file_actions_addclosefrom_np")

    private static func spawn(_ command: [String], listener: Int32, logPath: String?, outputPipe: Int32,
                              failure: (String) -> EndpointError) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        if let logPath {
            posix_spawn_file_actions_addopen(&actions, 2, logPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        } else {
            posix_spawn_file_actions_adddup2(&actions, outputPipe, 2)
        }
        posix_spawn_file_actions_adddup2(&actions, 2, 1)
        posix_spawn_file_actions_adddup2(&actions, listener, 3)
        // Everything else nbdtop has open stays out of the server (most is close-on-exec anyway).
        _ = addCloseFrom?(&actions, 4)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var emptyMask = sigset_t()
        sigemptyset(&emptyMask)
        var allSignals = sigset_t()
        sigfillset(&allSignals)
        posix_spawnattr_setsigmask(&attributes, &emptyMask)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let arguments = ["sh", "-c", "LISTEN_PID=$$ exec \"$@\"", "sh"] + command
        var environment: [String] = []
        var entry: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = environ
        while let current = entry, let pointer = current.pointee {
            let line = String(cString: pointer)
            if !line.hasPrefix("LISTEN_PID="), !line.hasPrefix("LISTEN_FDS="), !line.hasPrefix("LISTEN_FDNAMES=") {
                environment.append(line)
            }
            entry = current + 1
        }
        environment.append("LISTEN_FDS=1")

        var argv = arguments.map { strdup($0) } + [nil]
        var envp = environment.map { strdup($0) } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let status = posix_spawn(&pid, "/bin/sh", &actions, &attributes, &argv, &envp)
        guard status == 0 else { throw failure("/bin/sh: \(systemErrorText(status))") }
        return pid
    }

    // MARK: Connecting

    /// Connects to the server; on failure, the error names the command and says whether
    /// it exited (and how) before accepting the connection.
    public func connect(options: NBDConnection.Options = NBDConnection.Options(),
                        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> NBDConnection {
        do {
            return try await NBDConnection.connect(to: uri, options: options, group: group)
        } catch {
            throw await explain(error)
        }
    }

    /// Turns a failure to reach the server into an error that names the command and, when
    /// the server has exited, how. Waits up to `grace` for the exit to show: the socket
    /// closes a moment before the process can be reaped.
    public func explain(_ error: any Error, grace: Duration = .seconds(1)) async -> EndpointError {
        let deadline = ContinuousClock.now + grace
        var status = exitStatusIfExited
        while status == nil && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
            status = exitStatusIfExited
        }
        if let status {
            return EndpointError(.connection, "captive server `\(commandLine)` \(status) before accepting a connection"
                                 + logExcerpt())
        }
        return EndpointError(.connection, "captive server `\(commandLine)`: \(error)")
    }

    /// After a connection to the server was lost: "captive server `CMD` exited with status 1:
    /// LAST LINES" once the server has exited (waiting up to `grace` for the exit to show),
    /// nil while it still runs.
    public func exitAfterLostConnection(grace: Duration = .seconds(1)) async -> String? {
        let deadline = ContinuousClock.now + grace
        var status = exitStatusIfExited
        while status == nil && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
            status = exitStatusIfExited
        }
        return status.map { "captive server `\(commandLine)` \($0)" + logExcerpt() }
    }

    /// "captive server `CMD` exited with status 1", once it has exited.
    public var exitDescription: String? {
        exitStatusIfExited.map { "captive server `\(commandLine)` \($0)" }
    }

    /// The server's last lines of output (from `logPath` or the pass-through), for messages.
    private func logExcerpt() -> String {
        var lines: [String] = []
        if let logPath, let text = Self.readTail(of: logPath, bytes: 2048) {
            lines = text.split(separator: "\n", omittingEmptySubsequences: true).suffix(5).map(String.init)
        } else if let output {
            lines = output.lastLines(5)
        }
        guard !lines.isEmpty else { return "" }
        return ": " + lines.joined(separator: " / ")
    }

    private static func readTail(of path: String, bytes: Int) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { _ = Glibc.close(fd) }
        let end = lseek(fd, 0, SEEK_END)
        guard end >= 0 else { return nil }
        let start = max(0, end - off_t(bytes))
        var buffer = [UInt8](repeating: 0, count: Int(end - start))
        let got = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, start) }
        guard got > 0 else { return nil }
        return String(decoding: buffer[..<got], as: UTF8.self)
    }

    // MARK: Ending

    /// How the server ended, once it has (it is reaped then); nil while it runs.
    public var exitStatusIfExited: ExitStatus? {
        state.withLock { Self.poll(pid, &$0) }
    }

    /// Reaps the server if it has exited; call with the lock held, so a pid is never
    /// signalled after it was reaped (and perhaps reused).
    private static func poll(_ pid: pid_t, _ state: inout State) -> ExitStatus? {
        if let status = state.exitStatus { return status }
        var status: Int32 = 0
        let result = waitpid(pid, &status, WNOHANG)
        if result == pid {
            state.exitStatus = decode(status)
        } else if result < 0 && errno == ECHILD {
            state.exitStatus = .unknown
        }
        return state.exitStatus
    }

    private static func decode(_ status: Int32) -> ExitStatus {
        if status & 0x7f == 0 { return .exited((status >> 8) & 0xff) }
        return .killed(signal: status & 0x7f)
    }

    /// Sends `signal` unless the server has already exited.
    private func signalIfRunning(_ signal: Int32) {
        state.withLock { state in
            if Self.poll(pid, &state) == nil { kill(pid, signal) }
        }
    }

    /// Ends the server: SIGTERM, then SIGKILL if it is still there after `timeout`; reaps
    /// it and removes its folder. Runs the waiting on the thread pool.
    public func stop(timeout: Duration = .seconds(5)) async {
        do {
            try await NIOThreadPool.singleton.runIfActive { self.stopBlocking(timeout: timeout) }
        } catch {
            stopBlocking(timeout: timeout)
        }
    }

    /// `stop()` for synchronous code: blocks the calling thread up to `timeout`.
    public func stopBlocking(timeout: Duration = .seconds(5)) {
        let first = state.withLock { state -> Bool in
            defer { state.stopped = true }
            return !state.stopped
        }
        guard first else { return }
        signalIfRunning(SIGTERM)
        let deadline = ContinuousClock.now + timeout
        while exitStatusIfExited == nil && ContinuousClock.now < deadline {
            usleep(10_000)
        }
        if exitStatusIfExited == nil {
            signalIfRunning(SIGKILL)
            state.withLock { state in
                guard state.exitStatus == nil else { return }
                var status: Int32 = 0
                while true {
                    let result = waitpid(pid, &status, 0)
                    if result == pid {
                        state.exitStatus = Self.decode(status)
                        break
                    }
                    if result < 0 && errno != EINTR {
                        state.exitStatus = .unknown
                        break
                    }
                }
            }
        }
        Self.removeTree(directory)
    }

    // MARK: Helpers

    /// The path of `program` as the shell would find it in PATH, or nil.
    static func findExecutable(_ program: String) -> String? {
        if program.contains("/") {
            return access(program, X_OK) == 0 ? program : nil
        }
        let path = getenv("PATH").map { String(cString: $0) } ?? "/usr/bin:/bin"
        for folder in path.split(separator: ":", omittingEmptySubsequences: false) {
            let candidate = (folder.isEmpty ? "." : String(folder)) + "/" + program
            var status = stat()
            if stat(candidate, &status) == 0, status.st_mode & S_IFMT == S_IFREG, access(candidate, X_OK) == 0 {
                return candidate
            }
        }
        return nil
    }

    /// The words as a shell would need them, for messages.
    static func quote(_ words: [String]) -> String {
        words.map { word in
            let safe = !word.isEmpty && word.unicodeScalars.allSatisfy {
                ($0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0))) || "@%+=:,./_-".unicodeScalars.contains($0)
            }
            return safe ? word : "'" + word.replacingAll(of: "'", with: "'\\''") + "'"
        }.joined(separator: " ")
    }

    /// Removes `path` and everything in it (only ever our own private folder).
    static func removeTree(_ path: String) {
        var status = stat()
        guard lstat(path, &status) == 0 else { return }
        if status.st_mode & S_IFMT == S_IFDIR {
            if let directory = opendir(path) {
                var names: [String] = []
                while let entry = readdir(directory) {
                    let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                        String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
                    }
                    if name != "." && name != ".." { names.append(name) }
                }
                closedir(directory)
                for name in names { removeTree(path + "/" + name) }
            }
            rmdir(path)
        } else {
            unlink(path)
        }
    }
}

extension String {
    fileprivate func replacingAll(of target: String, with replacement: String) -> String {
        split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
