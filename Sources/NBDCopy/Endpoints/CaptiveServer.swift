import NBD
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

    struct State {
        var exitStatus: ExitStatus?
        var stopped = false
    }

    let state = Mutex(State())
    /// The server's output when it goes to nbdtop's stderr (no `logPath`).
    let output: CaptiveOutput?

    init(command: [String], commandLine: String, directory: String, socketPath: String, pid: pid_t, logPath: String?,
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
}
