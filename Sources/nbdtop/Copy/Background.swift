import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// `nbdtop copy --background`: starts the same copy again as a child in its own session,
/// detached from the terminal (stdin from /dev/null, output to `--log FILE` or nowhere),
/// and waits on a pipe until the child says whether the copy started.
///
/// The child is this executable with `--ready-fd 3` instead of `--background`: the parent
/// has no threads to lose and no event loops to inherit, which `fork` without `exec` would
/// give it.
enum Background {
    /// Starts the copy in the background; returns the exit status for the parent: 0 once
    /// the child reports the copy started (after printing its pid and control socket), or
    /// the child's status (1 when it exited 0 without starting) and its reason on stderr.
    static func start(arguments: [String], log: String?) throws -> Int32 {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { throw BackgroundError("cannot make a pipe: \(String(cString: strerror(errno)))") }
        let (readEnd, writeEnd) = (fds[0], fds[1])
        // Only the child's dup of the write end (fd 3) may stay open in it.
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        defer { close(readEnd) }
        let output = open(log ?? "/dev/null", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard output >= 0 else {
            close(writeEnd)
            throw BackgroundError("cannot write --log \(log ?? "/dev/null"): \(String(cString: strerror(errno)))")
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, output, 1)
        posix_spawn_file_actions_adddup2(&actions, output, 2)
        posix_spawn_file_actions_adddup2(&actions, writeEnd, 3)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // A session of its own: no controlling terminal, so no SIGHUP when this one goes;
        // signals as a fresh process has them (the parent ignores SIGPIPE).
        var emptyMask = sigset_t(), defaults = sigset_t()
        sigemptyset(&emptyMask)
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGPIPE)
        posix_spawnattr_setsigmask(&attributes, &emptyMask)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(Self.spawnSetSession | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv = [CommandLine.arguments[0], "copy", "--ready-fd", "3"] + arguments
        var cArguments = argv.map { strdup($0) } + [nil]
        defer { cArguments.forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, "/proc/self/exe", &actions, &attributes, &cArguments, environ)
        close(output)
        close(writeEnd)
        guard spawned == 0 else { throw BackgroundError("cannot start the copy: \(String(cString: strerror(spawned)))") }

        let report = readAll(readEnd)
        if report.hasPrefix("started\n") {
            let socket = String(report.dropFirst("started\n".count)).trimmingSuffix("\n")
            OutputFile.standardOutput.write("pid \(pid)\ncontrol \(socket.isEmpty ? "none" : socket)\n")
            return 0
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let exitStatus = status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        if report.hasPrefix("failed\n") {
            printError("nbdtop: \(report.dropFirst("failed\n".count).trimmingSuffix("\n"))")
        } else {
            printError("nbdtop: the copy exited with status \(exitStatus) before it started" + (log.map { " (see \($0))" } ?? ""))
        }
        return exitStatus == 0 ? 1 : exitStatus
    }

    /// glibc's `POSIX_SPAWN_SETSID` (2.26 and later), which its Swift module does not export.
    private static let spawnSetSession: Int32 = 0x80

    private static func readAll(_ fd: Int32) -> String {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            bytes += chunk[0..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// The child's end of the `--background` pipe: says once whether the copy started
/// (`started\nSOCKET\n`) or why not (`failed\nMESSAGE\n`), then closes it.
final class BackgroundReadiness: Sendable {
    private let descriptor: Mutex<Int32?>

    init(_ descriptor: Int32) {
        // Captive servers and other children must not hold the parent's pipe open.
        _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC)
        self.descriptor = Mutex(descriptor)
    }

    func started(socket: String?) {
        say("started\n\(socket ?? "")\n")
    }

    func failed(_ message: String) {
        say("failed\n\(message)\n")
    }

    private func say(_ text: String) {
        descriptor.withLock { descriptor in
            guard let fd = descriptor else { return }
            descriptor = nil
            let bytes = Array(text.utf8)
            // Short and written once: a pipe takes it whole. A parent that is gone is fine.
            _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress!, $0.count) }
            close(fd)
        }
    }
}

struct BackgroundError: Error, CustomStringConvertible {
    var message: String
    init(_ message: String) { self.message = message }
    var description: String { message }
}

extension StringProtocol {
    func trimmingSuffix(_ suffix: String) -> String {
        hasSuffix(suffix) ? String(dropLast(suffix.count)) : String(self)
    }
}
