import NIOCore
#if canImport(Glibc)
import Glibc
#endif

// Starting a captive server: its private folder and listening socket, and spawning the
// command with the socket as fd 3 (systemd socket activation).
extension CaptiveServer {
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
}

extension String {
    fileprivate func replacingAll(of target: String, with replacement: String) -> String {
        split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
