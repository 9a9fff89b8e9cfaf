#if canImport(Glibc)
import Glibc
#endif

/// The command `--run` starts: `/bin/sh -c CMD` with `$uri` and `$NBD_URI` pointing at the
/// proxy, on nbdtop's own stdin, stdout and stderr, as nbdkit's `--run` does.
final class RunCommand: Sendable {
    let pid: pid_t

    private init(pid: pid_t) {
        self.pid = pid
    }

    /// `quiet`: stdin from /dev/null and output discarded (the dashboard has the terminal).
    static func start(_ command: String, uri: String, quiet: Bool = false) throws(RunCommandError) -> RunCommand {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if quiet {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
            posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // Signals as a fresh process has them (nbdtop ignores SIGPIPE and watches others).
        var emptyMask = sigset_t(), defaults = sigset_t()
        sigemptyset(&emptyMask)
        sigfillset(&defaults)
        posix_spawnattr_setsigmask(&attributes, &emptyMask)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var environment = [String]()
        var entry = environ
        while let pointer = entry.pointee {
            let variable = String(cString: pointer)
            if !variable.hasPrefix("uri=") && !variable.hasPrefix("NBD_URI=") { environment.append(variable) }
            entry += 1
        }
        environment += ["uri=\(uri)", "NBD_URI=\(uri)"]
        let arguments: [String] = ["/bin/sh", "-c", command]
        var cArguments = arguments.map { strdup($0) } + [nil]
        var cEnvironment = environment.map { strdup($0) } + [nil]
        defer {
            cArguments.forEach { free($0) }
            cEnvironment.forEach { free($0) }
        }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, "/bin/sh", &actions, &attributes, &cArguments, &cEnvironment)
        guard spawned == 0 else { throw RunCommandError("cannot start --run command: \(String(cString: strerror(spawned)))") }
        return RunCommand(pid: pid)
    }

    /// Waits until the command ends (polling, so no thread blocks) and returns its exit
    /// status: its own, or 128 + the signal that killed it, as a shell reports it.
    func exitStatus() async -> Int32 {
        while true {
            var status: Int32 = 0
            let result = waitpid(pid, &status, WNOHANG)
            if result == pid { return status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f) }
            if result < 0 && errno != EINTR { return 1 }
            try? await Task.sleep(for: .milliseconds(50))
        }
    }

    /// Asks the command to end (the proxy was stopped before it did).
    func terminate() {
        kill(pid, SIGTERM)
    }
}

struct RunCommandError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
