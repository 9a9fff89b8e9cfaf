import Foundation

/// A real terminal for end-to-end tests: a private tmux server with one detached session of
/// a fixed size, driven by `send-keys` and read back with `capture-pane`.
///
/// The server runs on its own socket in a temp folder (`tmux -S PATH`, never the user's
/// default server), reads only a config written here (not `~/.tmux.conf`), and is started
/// in the foreground (`tmux -D`) as a child of the test so that it can be reaped. `stop()`,
/// which `deinit` also calls, kills the server and anything still running in the pane, by
/// pid, and removes the folder.
///
/// Panes stay open after their command exits (`remain-on-exit`), so the screen the command
/// left behind can still be captured; there is no status line, so the pane has the whole
/// `columns` by `rows` window.
public final class TmuxSession: @unchecked Sendable {
    public let directory: TemporaryDirectory
    public let socketPath: String
    public let columns: Int
    public let rows: Int
    /// The session's name, used as the target of every command.
    public let name = "e2e"
    private let serverPid: pid_t
    private let lock = NSLock()
    private var stopped = false
    /// Processes seen under the pane, killed in `stop()` if they outlive the server.
    private var seenDescendants: Set<pid_t> = []

    /// Starts the private tmux server (no session yet; see `start(script:)`).
    public init(columns: Int = 120, rows: Int = 40) throws {
        self.columns = columns
        self.rows = rows
        directory = try TemporaryDirectory(prefix: "nbdtop-tmux")
        socketPath = directory.file("tmux.sock")
        let config = directory.file("tmux.conf")
        let settings = """
            set-option -g remain-on-exit on
            set-option -g status off
            set-option -g history-limit 5000
            set-option -s escape-time 0
            set-option -g default-size \(columns)x\(rows)

            """
        do {
            try settings.write(toFile: config, atomically: true, encoding: .utf8)
            let log = directory.file("server.log")
            serverPid = try Spawn.start(["tmux", "-D", "-S", socketPath, "-f", config], outputPath: log, errorPath: log,
                                        environment: Self.environment)
        } catch {
            directory.remove()
            throw error
        }
        let deadline = ContinuousClock.now + .seconds(10)
        while !FileManager.default.fileExists(atPath: socketPath) {
            if Spawn.poll(serverPid) != nil || ContinuousClock.now > deadline {
                let log = (try? String(contentsOfFile: directory.file("server.log"), encoding: .utf8)) ?? ""
                stop()
                throw TestSupportError("tmux server did not start: \(log)")
            }
            usleep(10_000)
        }
    }

    deinit { stop() }

    /// tmux looks at `TMUX` to find an enclosing server; the socket is always given here,
    /// but clear it anyway so that a test run inside tmux behaves like any other.
    private static let environment = ["TMUX": "", "TMUX_PANE": ""]

    // MARK: Running

    /// Runs `script` with `sh` in the session's only pane. The script is written to a file
    /// in the session's folder, so it needs no quoting for tmux.
    public func start(script: String) throws {
        let path = directory.file("pane.sh")
        try script.write(toFile: path, atomically: true, encoding: .utf8)
        try tmux(["new-session", "-d", "-s", name, "-x", String(columns), "-y", String(rows), "sh \(path)"])
    }

    /// Runs a tmux command against this server; throws with its stderr when it fails.
    @discardableResult
    public func tmux(_ arguments: [String], timeout: Duration = .seconds(10)) throws -> String {
        let result = try CommandRunner.run(["tmux", "-S", socketPath] + arguments, timeout: timeout, environment: Self.environment)
        guard result.status == 0 else {
            throw TestSupportError("tmux \(arguments.joined(separator: " ")) failed (\(result.status)): \(result.stderr)")
        }
        return result.stdout
    }

    /// Types `keys` literally (no key-name lookup), as a person at the terminal would.
    public func type(_ keys: String) throws {
        rememberDescendants()
        try tmux(["send-keys", "-t", name, "-l", keys])
    }

    /// Sends named keys (`Enter`, `F10`, `C-c`).
    public func sendKeys(_ keys: String...) throws {
        rememberDescendants()
        try tmux(["send-keys", "-t", name] + keys)
    }

    /// The visible screen, one line per row (trailing blanks trimmed by tmux); with
    /// `history`, the scrollback above it too.
    public func capture(history: Bool = false) throws -> String {
        rememberDescendants()
        return try tmux(["capture-pane", "-p", "-t", name] + (history ? ["-S", "-"] : []))
    }

    /// A tmux format evaluated for the pane, e.g. `#{alternate_on}`.
    public func format(_ format: String) throws -> String {
        try tmux(["display-message", "-p", "-t", name, format]).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Whether the pane shows the alternate screen (a full-screen program is running).
    public var alternateScreenOn: Bool {
        get throws { try format("#{alternate_on}") == "1" }
    }

    /// Captures the screen every 50 ms until `condition` holds for it and returns that
    /// screen; throws after `timeout` with the last screen.
    @discardableResult
    public func waitForScreen(timeout: Duration = .seconds(30), _ what: String,
                              _ condition: (String) throws -> Bool) throws -> String {
        let deadline = ContinuousClock.now + timeout
        var screen = ""
        while true {
            screen = try capture()
            if try condition(screen) { return screen }
            if ContinuousClock.now > deadline {
                let message = "timed out after \(timeout) waiting for \(what); the screen:\n\(screen)"
                // Also on stderr: a test runner may show a thrown error's issue without its text.
                FileHandle.standardError.write(Data("TmuxSession: \(message)\n".utf8))
                throw TestSupportError(message)
            }
            usleep(50_000)
        }
    }

    /// Waits until `text` is on the screen; returns the screen.
    @discardableResult
    public func waitForText(_ text: String, timeout: Duration = .seconds(30)) throws -> String {
        try waitForScreen(timeout: timeout, "'\(text)'") { $0.contains(text) }
    }

    /// Waits until the pane's command (the script) has exited; returns its exit status.
    @discardableResult
    public func waitForExit(timeout: Duration = .seconds(30)) throws -> Int32 {
        let deadline = ContinuousClock.now + timeout
        while true {
            if try format("#{pane_dead}") == "1" {
                return Int32(try format("#{pane_dead_status}")) ?? -1
            }
            if ContinuousClock.now > deadline {
                let screen = (try? capture()) ?? ""
                throw TestSupportError("the pane's command did not exit within \(timeout); the screen:\n\(screen)")
            }
            usleep(50_000)
        }
    }

    // MARK: Processes

    /// The pid of the pane's shell, or nil once it has exited.
    public var panePid: pid_t? {
        guard let text = try? format("#{pane_pid}"), let pid = pid_t(text), pid > 0,
              (try? format("#{pane_dead}")) == "0" else { return nil }
        return pid
    }

    /// Every live process under the pane's shell (the shell excluded), e.g. nbdtop and the
    /// servers it started.
    public func paneDescendants() -> [ProcessInfoLine] {
        guard let root = panePid else { return [] }
        let table = ProcessTable.read()
        var result: [ProcessInfoLine] = []
        var frontier: [pid_t] = [root]
        while let parent = frontier.popLast() {
            for child in table where child.parent == parent {
                result.append(child)
                frontier.append(child.pid)
            }
        }
        return result
    }

    private func rememberDescendants() {
        let pids = paneDescendants().map(\.pid)
        lock.withLock { seenDescendants.formUnion(pids) }
    }

    /// Kills the server (which hangs up the pane), reaps it, then SIGKILLs any process
    /// seen under the pane that is still alive; removes the folder.
    public func stop() {
        let leftovers: Set<pid_t>? = lock.withLock {
            guard !stopped else { return nil }
            stopped = true
            return seenDescendants
        }
        guard var leftovers else { return }
        leftovers.formUnion(paneDescendants().map(\.pid))
        if Spawn.poll(serverPid) == nil {
            _ = try? CommandRunner.run(["tmux", "-S", socketPath, "kill-server"], timeout: .seconds(5), environment: Self.environment)
            let deadline = ContinuousClock.now + .seconds(5)
            while Spawn.poll(serverPid) == nil {
                if ContinuousClock.now > deadline {
                    kill(serverPid, SIGKILL)
                    _ = waitpid(serverPid, nil, 0)
                    break
                }
                usleep(10_000)
            }
        }
        // What the hang-up did not end within a few seconds is killed.
        let deadline = ContinuousClock.now + .seconds(3)
        while ContinuousClock.now < deadline && leftovers.contains(where: ProcessTable.isAlive) { usleep(20_000) }
        for pid in leftovers where ProcessTable.isAlive(pid) { kill(pid, SIGKILL) }
        directory.remove()
    }
}

/// One process from /proc.
public struct ProcessInfoLine: Sendable, Equatable, CustomStringConvertible {
    public var pid: pid_t
    public var parent: pid_t
    /// The command line, arguments joined by spaces.
    public var commandLine: String

    public var description: String { "\(pid) \(commandLine)" }
}

/// Reads the process table from /proc.
public enum ProcessTable {
    public static func read() -> [ProcessInfoLine] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        return names.compactMap { name in
            guard let pid = pid_t(name), let line = info(pid) else { return nil }
            return line
        }
    }

    public static func info(_ pid: pid_t) -> ProcessInfoLine? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        // After "PID (COMM) ": state, then the parent's pid.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 1, fields[0] != "Z", let parent = pid_t(fields[1]) else { return nil }
        let raw = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline"))) ?? Data()
        let commandLine = raw.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }.joined(separator: " ")
        return ProcessInfoLine(pid: pid, parent: parent, commandLine: commandLine)
    }

    /// Whether `pid` exists and is not a zombie.
    public static func isAlive(_ pid: pid_t) -> Bool { info(pid) != nil }
}

/// Quotes words for `sh`.
public enum ShellQuote {
    /// `'word'`, with embedded single quotes closed, escaped and reopened.
    public static func word(_ word: String) -> String {
        "'" + word.replacingOccurrences(of: "'", with: #"'\''"#) + "'"
    }

    /// The words as one command line.
    public static func command(_ words: [String]) -> String {
        words.map(word).joined(separator: " ")
    }
}
