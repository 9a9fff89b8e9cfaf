import Telemetry
#if canImport(Glibc)
import Glibc
#endif

/// One copy or proxy in the control folder, running or ended, as `nbdtop ls` shows it.
public struct TransferSummary: Sendable {
    public enum State: String, Sendable {
        case running, done, failed
    }

    /// What the process is: its start line's `"mode"`.
    public enum Mode: String, Sendable {
        /// `nbdtop copy` (or the nbdcopy stand-in): lanes, a size, an ETA.
        case copy
        /// `nbdtop proxy`: clients, and the bytes relayed between them and the upstream.
        case proxy

        init(_ value: JSONValue?) {
            self = value?.string == Mode.proxy.rawValue ? .proxy : .copy
        }
    }

    public var pid: pid_t
    public var mode: Mode
    public var state: State
    public var source: String
    public var destination: String
    public var bytesDone: UInt64
    public var bytesTotal: UInt64?
    public var bytesPerSecond: Double
    public var lanes: Int
    /// A proxy's clients: connected now while it runs, all it had once it ended (0 for a copy).
    public var clients: Int
    /// Seconds since the Unix epoch.
    public var started: Double?
    public var elapsedSeconds: Double
    public var etaSeconds: Double?
    public var paused: Bool
    /// The exit status, once the copy has ended.
    public var exitStatus: Int?
    /// Seconds since the Unix epoch, once the copy has ended.
    public var ended: Double?
    /// The control socket of a running copy.
    public var socket: String?

    /// A running copy, from the hello its control socket sent.
    public init(pid: pid_t, hello: JSONValue, socket: String) {
        let start = hello["start"] ?? .null, sample = hello["sample"] ?? .null
        self.pid = pid
        mode = Mode(start["mode"] ?? hello["mode"])
        state = .running
        source = start["src"]?.string ?? "?"
        destination = start["dst"]?.string ?? "?"
        bytesDone = sample["bytes_done"]?.uint ?? 0
        bytesTotal = sample["bytes_total"]?.uint ?? start["bytes_total"]?.uint
        bytesPerSecond = sample["rate_bps"]?.double ?? 0
        lanes = Int(sample["lanes"]?.int ?? start["lanes"]?.int ?? 0)
        clients = Int(sample["clients"]?.int ?? 0)
        started = hello["started"]?.double
        elapsedSeconds = hello["t"]?.double ?? 0
        etaSeconds = sample["eta_s"]?.double
        paused = sample["paused"]?.bool ?? false
        self.socket = socket
    }

    /// An ended copy, from its result file.
    public init(pid: pid_t, result: JSONValue) {
        self.pid = pid
        mode = Mode(result["mode"])
        let exit = result["exit"]?.int.flatMap { Int(exactly: $0) }
        // A proxy runs until it is stopped: Ctrl-C (130) and SIGTERM (143) end it as asked.
        let stopped = mode == .proxy && (exit == 130 || exit == 143)
        state = exit == 0 || stopped ? .done : .failed
        source = result["src"]?.string ?? "?"
        destination = result["dst"]?.string ?? "?"
        bytesDone = result["bytes_done"]?.uint ?? 0
        bytesTotal = result["bytes_total"]?.uint
        bytesPerSecond = 0
        lanes = Int(result["lanes"]?.int ?? 0)
        clients = Int(result["clients_total"]?.int ?? 0)
        started = result["started"]?.double
        elapsedSeconds = result["elapsed_s"]?.double ?? 0
        etaSeconds = nil
        paused = false
        exitStatus = exit
        ended = result["ended"]?.double
    }

    /// Percent done, when the size is known.
    public var percent: Double? {
        guard let bytesTotal else { return nil }
        return bytesTotal == 0 ? 100 : Double(bytesDone) / Double(bytesTotal) * 100
    }

    /// The object `nbdtop ls --json` prints for it: a proxy has `clients` where a copy
    /// has `lanes`, and `bytes_done` counts what it relayed.
    public var json: JSONValue {
        var members: [(String, JSONValue)] = [
            ("pid", .int(Int64(pid))), ("mode", .string(mode.rawValue)), ("state", .string(state.rawValue)),
            ("src", .string(source)), ("dst", .string(destination)),
            ("bytes_done", .uint(bytesDone)), ("bytes_total", bytesTotal.map { .uint($0) } ?? .null),
            ("rate_bps", .double(bytesPerSecond.rounded())),
            mode == .proxy ? ("clients", .int(Int64(clients))) : ("lanes", .int(Int64(lanes))),
            ("started", started.map { .double(($0 * 1000).rounded() / 1000) } ?? .null),
            ("elapsed_s", .double((elapsedSeconds * 1000).rounded() / 1000)),
            ("eta_s", etaSeconds.map { .double($0) } ?? .null), ("paused", .bool(paused)),
        ]
        if let exitStatus { members.append(("exit", .int(Int64(exitStatus)))) }
        if let ended { members.append(("ended", .double((ended * 1000).rounded() / 1000))) }
        if let socket { members.append(("socket", .string(socket))) }
        return .object(members)
    }
}

extension ControlDirectory {
    /// The copies in this folder: running ones first (asked over their sockets), then the
    /// results of ended ones, each in pid order. Tidies up on the way: removes results
    /// older than `ResultFile.lifetime`, and sockets whose process is gone or that nobody
    /// answers on.
    public func transfers() async -> [TransferSummary] {
        var running: [TransferSummary] = [], ended: [TransferSummary] = []
        for pid in pids() {
            let socket = socketPath(pid: pid), result = resultPath(pid: pid)
            if ResultFile.isExpired(result) { unlink(result) }
            if let value = ResultFile.read(result) {
                ended.append(TransferSummary(pid: pid, result: value))
                // The copy has ended; a socket still there is stale (or about to go).
                if !Self.isAlive(pid) { unlink(socket) }
                continue
            }
            guard access(socket, F_OK) == 0 else { continue }
            if Self.isAlive(pid), let hello = try? await ControlClient.hello(at: socket) {
                running.append(TransferSummary(pid: pid, hello: hello, socket: socket))
            } else if !StaleSocket.answers(socket) {
                unlink(socket)
            }
        }
        return running + ended
    }

    /// Whether a process with this pid exists (perhaps another user's).
    static func isAlive(_ pid: pid_t) -> Bool {
        kill(pid, 0) == 0 || errno == EPERM
    }
}
