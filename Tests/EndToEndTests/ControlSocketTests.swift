import Foundation
import NBDTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The control socket, `nbdtop ls` and copies that outlive their terminal, with the real
/// binary against rate-limited nbdkit servers. Every run has its own control folder
/// (`XDG_RUNTIME_DIR` in a temp folder), so runs in parallel never see each other's copies.
///
/// Serialized: the machine has 2 cores.
@Suite(.serialized, .timeLimit(.minutes(3))) struct ControlSocketTests {
    /// A headless copy is listed while it runs; `add_lane` over the socket adds a lane the
    /// copy's own JSON lines report; it ends verified, and `ls` shows its result.
    @Test func headlessCopyIsListedAndSteered() throws {
        let run = try ControlRun()
        defer { run.remove() }
        let source = try ControlRun.slowPattern()
        defer { source.stop() }
        let copy = try run.startedCopy(["-C", "2", source.uri, run.folder.file("out.img")])
        defer { copy.stop() }
        let listing = try run.list()
        let listed = try #require(listing.first { $0["pid"] as? Int == Int(copy.pid) }, "ls: \(listing)")
        #expect(listed["state"] as? String == "running" && listed["src"] as? String == source.uri, "\(listed)")
        #expect(listed["dst"] as? String == run.folder.file("out.img") && listed["lanes"] as? Int == 2, "\(listed)")
        #expect(listed["bytes_total"] as? Int == 32 << 20 && listed["started"] is Double, "\(listed)")

        let client = try ControlConnection(path: run.socket(copy.pid))
        let hello = try parseJSON(try #require(client.readLine(), "no hello"))
        #expect(hello["event"] as? String == "hello" && hello["v"] as? Int == 1, "\(hello)")
        #expect((hello["start"] as? [String: Any])?["src"] as? String == source.uri, "\(hello)")
        #expect((hello["sample"] as? [String: Any])?["conns"] is [Any], "\(hello)")
        #expect((hello["history"] as? [[String: Any]])?.first?["rate_bps"] is [Any], "\(hello)")
        #expect((hello["events"] as? [[String: Any]])?.contains { $0["event"] as? String == "lane_added" } == true, "\(hello)")
        try client.send(line: #"{"cmd":"add_lane"}"#)
        let reply = try parseJSON(try #require(client.readLine { $0.contains("\"ok\"") }, "no reply"))
        #expect(reply["ok"] as? Bool == true && reply["id"] as? Int == 3, "\(reply)")
        let added = try copy.waitUntil(timeout: .seconds(20)) {
            try StatsLog(copy.stdout, partial: true).events("lane_added").contains { $0.int("id") == 3 }
        }
        #expect(added, "no lane_added 3 in --stats-json")
        #expect(copy.wait(timeout: .seconds(120)) == 0, "\(copy.stderr)")
        #expect(client.readLine { $0.contains(#""event":"done""#) } != nil, "clients get the done line")
        #expect(client.readLine(timeout: .seconds(10)) == nil, "then the copy closes the connection")
        try run.expectDone(copy.pid)
        #expect(try ImageCheck.firstPatternMismatch(inFile: run.folder.file("out.img")) == nil)
    }

    /// A copy made by the nbdcopy stand-in (as virt-v2v would run it) publishes its socket
    /// like any other: `ls` lists it while it runs and keeps its result.
    @Test func nbdcopyStandInIsListedWhileItRuns() throws {
        let run = try ControlRun()
        defer { run.remove() }
        let source = try ControlRun.slowPattern()
        defer { source.stop() }
        let output = run.folder.file("out.img")
        let copy = try run.startedStandIn([source.uri, output, "--request-size=262144", "--requests=16", "--flush"])
        defer { copy.stop() }
        let listed = try run.waitUntilListed(copy.pid, timeout: .seconds(30)) { $0["state"] as? String == "running" }
        #expect(listed["src"] as? String == source.uri && listed["dst"] as? String == output, "\(listed)")
        #expect(copy.wait(timeout: .seconds(120)) == 0, "\(copy.stderr)")
        try run.expectDone(copy.pid)
        #expect(try ImageCheck.firstPatternMismatch(inFile: output) == nil)
    }

    /// Killing the dashboard's tmux session hangs up its terminal: the copy goes on without
    /// the dashboard, completes, and records its result.
    @Test func dashboardCopyOutlivesItsTerminal() throws {
        let run = try ControlRun()
        defer { run.remove() }
        let source = try ControlRun.slowPattern()
        defer { source.stop() }
        let output = run.folder.file("out.img")
        let dashboard = try DashboardRun(environment: run.environment) { _ in ["copy", "-C", "2", source.uri, output] }
        defer { dashboard.stop() }
        try dashboard.terminal.waitForScreen("the dashboard with bytes copied") { screen in
            DashboardScreen(screen).sourceRows.contains { $0.bytes > 0 }
        }
        let pid = try #require(dashboard.nbdtopPid, "nbdtop in the pane: \(dashboard.terminal.paneDescendants())")
        try dashboard.terminal.tmux(["kill-session", "-t", dashboard.terminal.name])
        let ended = try run.waitUntilListed(pid, timeout: .seconds(120)) { $0["state"] as? String != "running" }
        #expect(ended["state"] as? String == "done" && ended["exit"] as? Int == 0, "\(ended)")
        #expect(try ImageCheck.firstPatternMismatch(inFile: output) == nil)
        #expect(try ImageCheck.sizes(of: output).size == 32 << 20)
    }

    /// `ls` tidies the folder as it reads it: a socket left by a process that is gone and a
    /// result older than 24 hours are removed, a fresh result stays; `list` is `ls`.
    @Test func lsRemovesStaleSocketsAndExpiredResults() throws {
        let run = try ControlRun()
        defer { run.remove() }
        let source = try ServerProcess.nbdkit(["pattern", "1M"], options: ["-r"])
        defer { source.stop() }
        let copied = try run.nbdtop(["copy", "--no-tui", source.uri, run.folder.file("out.img")])
        try #require(copied.status == 0, "\(copied.stderr)")
        let finished = try #require(try run.list().first { $0["state"] as? String == "done" }?["pid"] as? Int)
        // Two processes that are gone: one left a socket (bound, then exited), one a result
        // written 25 hours ago.
        let bind = "import os, socket, sys; socket.socket(socket.AF_UNIX).bind('%s/%d.sock' % (sys.argv[1], os.getpid())); print(os.getpid())"
        let stalePid = try #require(Int(try peer("python3", "-c", bind, run.directory).stdout.trimmingCharacters(in: .whitespacesAndNewlines)))
        let staleSocket = "\(run.directory)/\(stalePid).sock"
        #expect(FileManager.default.fileExists(atPath: staleSocket))
        let gonePid = try #require(Int(try peer("python3", "-c", "import os; print(os.getpid())").stdout.trimmingCharacters(in: .whitespacesAndNewlines)))
        let expired = "\(run.directory)/\(gonePid).result.json", fresh = "\(run.directory)/\(finished).result.json"
        try FileManager.default.copyItem(atPath: fresh, toPath: expired)
        #expect(try peer("touch", "-d", "25 hours ago", expired).status == 0)

        let pids = Set(try run.list().compactMap { $0["pid"] as? Int })
        #expect(pids == [finished], "\(pids)")
        #expect(!FileManager.default.fileExists(atPath: staleSocket), "the stale socket is removed")
        #expect(!FileManager.default.fileExists(atPath: expired), "the expired result is removed")
        #expect(FileManager.default.fileExists(atPath: fresh), "the fresh result stays")
        let alias = try run.nbdtop(["list", "--json"])
        let aliasPids = (try JSONSerialization.jsonObject(with: Data(alias.stdout.utf8)) as? [[String: Any]])?.compactMap { $0["pid"] as? Int }
        #expect(alias.status == 0 && aliasPids == [finished], "\(alias.stdout)\(alias.stderr)")
    }

    /// `--background` returns at once with the pid and socket; the copy completes alone.
    @Test func backgroundCopyCompletesAndIsListed() throws {
        let run = try ControlRun()
        defer { run.remove() }
        let source = try ControlRun.slowPattern()
        defer { source.stop() }
        let output = run.folder.file("out.img"), log = run.folder.file("copy.log")
        let started = try run.nbdtop(["copy", "--background", "--log", log, "-v", source.uri, output])
        #expect(started.status == 0, "\(started.stderr)")
        let pid = try #require(started.stdout.split(separator: "\n").first { $0.hasPrefix("pid ") }.flatMap { pid_t($0.dropFirst(4)) },
                               "\(started.stdout)")
        #expect(started.stdout.contains("control \(run.socket(pid))"), "\(started.stdout)")
        #expect(ProcessTable.isAlive(pid), "still copying after the parent exited")
        defer { if ProcessTable.isAlive(pid) { kill(pid, SIGKILL) } }
        let ended = try run.waitUntilListed(pid, timeout: .seconds(120)) { $0["state"] as? String != "running" }
        #expect(ended["state"] as? String == "done" && ended["exit"] as? Int == 0, "\(ended)")
        #expect(try ImageCheck.firstPatternMismatch(inFile: output) == nil)
        let logged = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(logged.contains("copied "), "-v output went to --log: \(logged)")
    }

    @Test func backgroundCopyFromAnUnreachableSourceFails() throws {
        let run = try ControlRun()
        defer { run.remove() }
        let missing = run.folder.file("nobody.sock")
        let result = try run.nbdtop(["copy", "--background", "nbd+unix:///?socket=\(missing)", "null:"])
        #expect(result.status == 1, "\(result.stdout)\(result.stderr)")
        #expect(result.stderr.hasPrefix("nbdtop: source") && result.stderr.contains(missing), "\(result.stderr)")
        #expect(try run.list().isEmpty)
    }

    /// The folder is 0700 and the socket 0600; another uid cannot connect, and one that can
    /// reach the socket anyway (CAP_DAC_OVERRIDE) is closed before anything is read: its
    /// `stop` is never carried out.
    @Test func otherUsersGetNothing() throws {
        let run = try ControlRun()
        defer { run.remove() }
        let source = try ControlRun.slowPattern()
        defer { source.stop() }
        let copy = try run.startedCopy([source.uri, "null:"])
        defer { copy.stop() }
        let socket = run.socket(copy.pid)
        #expect(try ControlRun.mode(run.directory) == 0o700)
        #expect(try ControlRun.mode(socket) == 0o600)
        let plain = try ControlRun.otherUserClient(socket, overridingPermissions: false)
        #expect(plain.stdout.hasPrefix("refused: "), "\(plain.stdout)\(plain.stderr)")
        let privileged = try ControlRun.otherUserClient(socket, overridingPermissions: true)
        #expect(privileged.stdout.hasPrefix("connected, read 0") || privileged.stdout.hasPrefix("connected, read -1"),
                "\(privileged.stdout)\(privileged.stderr)")
        #expect(copy.wait(timeout: .seconds(120)) == 0, "the stop was ignored: \(copy.stderr)")
    }

    struct BadFolder: Sendable, CustomTestStringConvertible {
        var mode: mode_t
        var owner: uid_t?
        var reason: String
        var testDescription: String { reason }
    }

    @Test(arguments: [BadFolder(mode: 0o777, owner: nil, reason: "is writable by others"),
                      BadFolder(mode: 0o700, owner: 65534, reason: "belongs to uid 65534")])
    func untrustedFolderIsRefused(folder: BadFolder) throws {
        let run = try ControlRun()
        defer { run.remove() }
        #expect(mkdir(run.directory, 0o700) == 0 && chmod(run.directory, folder.mode) == 0)
        if let owner = folder.owner { #expect(chown(run.directory, owner, owner) == 0) }
        let source = try ServerProcess.nbdkit(["pattern", "4M"], options: ["-r"])
        defer { source.stop() }
        let result = try run.nbdtop(["copy", source.uri, "null:"])
        #expect(result.status == 0, "the copy runs without a socket: \(result.stderr)")
        #expect(result.stderr.contains("no control socket: \(run.directory) \(folder.reason)"), "\(result.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: run.directory).isEmpty)
        let listing = try run.nbdtop(["ls"])
        #expect(listing.status != 0 && listing.stderr.contains(folder.reason), "\(listing.stderr)")
    }

    /// Garbage, an endless line, a client that never reads and a hundred clients at once:
    /// each bad client gets errors or is closed, the others keep working, the copy completes.
    @Test func hostileClientsDoNotHurtTheCopy() throws {
        let run = try ControlRun()
        defer { run.remove() }
        let source = try ControlRun.slowPattern()
        defer { source.stop() }
        let output = run.folder.file("out.img")
        let copy = try run.startedCopy(["-C", "2", source.uri, output])
        defer { copy.stop() }
        let socket = run.socket(copy.pid)

        let garbage = try ControlConnection(path: socket)
        try garbage.send(Array("\u{01}\u{ff}{\"cmd\":\nnot json\n[1,2]\n{\"cmd\":\"fly\"}\n{\"cmd\":\"drop_lane\",\"id\":\"x\"}\n".utf8))
        #expect(garbage.readLine()?.contains(#""event":"hello""#) == true)
        for _ in 0..<5 {
            let reply = garbage.readLine { $0.contains("\"ok\"") }
            #expect(reply?.contains(#""ok":false"#) == true, "\(reply ?? "none")")
        }

        let endless = try ControlConnection(path: socket)
        try? endless.send([UInt8](repeating: UInt8(ascii: "x"), count: 1 << 20))
        let refused = endless.readLine { $0.contains("\"ok\"") }
        #expect(refused?.contains("line longer than 65536 bytes") == true, "\(refused ?? "none")")
        #expect(endless.readLine(timeout: .seconds(10)) == nil, "closed after the long line")

        let deaf = try ControlConnection(path: socket)
        try deaf.send(line: #"{"cmd":"interval","ms":100}"#)

        let crowd = try (0..<100).map { _ in try ControlConnection(path: socket) }
        for client in crowd {
            let first = client.readLine()
            #expect(first?.hasPrefix(#"{"v":1,"event":"hello""#) == true, "\(first?.prefix(300) ?? "nothing")")
        }
        let steady = try #require(crowd.last)
        try steady.send(line: #"{"cmd":"pause"}"#)
        #expect(steady.readLine { $0.contains("\"ok\"") }?.contains(#""ok":true"#) == true)
        try steady.send(line: #"{"v":1,"cmd":"resume"}"#)
        #expect(steady.readLine { $0.contains("\"ok\"") }?.contains(#""ok":true"#) == true)
        #expect(garbage.readLine { $0.contains(#""event":"resumed""#) } != nil, "the garbage sender still gets events")
        #expect(copy.wait(timeout: .seconds(120)) == 0, "\(copy.stderr)")
        #expect(try ImageCheck.firstPatternMismatch(inFile: output) == nil)
    }
}

/// One test's control folder and the commands that use it.
struct ControlRun {
    let folder: TemporaryDirectory
    /// What `XDG_RUNTIME_DIR` is set to.
    let runtime: String

    init() throws {
        folder = try TemporaryDirectory(prefix: "nbdtop-ctl")
        runtime = folder.file("runtime")
        guard mkdir(runtime, 0o700) == 0 else { throw TestSupportError("mkdir \(runtime) failed") }
    }

    func remove() { folder.remove() }

    var environment: [String: String] { ["XDG_RUNTIME_DIR": runtime] }
    var directory: String { runtime + "/nbdtop" }
    func socket(_ pid: pid_t) -> String { "\(directory)/\(pid).sock" }

    func nbdtop(_ arguments: [String]) throws -> CommandResult {
        try CommandRunner.run([try CommandRunner.nbdtopBinary()] + arguments, environment: environment)
    }

    /// `nbdtop ls --json`.
    func list() throws -> [[String: Any]] {
        let result = try nbdtop(["ls", "--json"])
        guard result.status == 0,
              let entries = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]] else {
            throw TestSupportError("ls --json: \(result.status) \(result.stdout) \(result.stderr)")
        }
        return entries
    }

    /// Polls `ls --json` until `pid`'s entry satisfies `condition`.
    func waitUntilListed(_ pid: pid_t, timeout: Duration, _ condition: ([String: Any]) -> Bool) throws -> [String: Any] {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let entry = try list().first(where: { $0["pid"] as? Int == Int(pid) }), condition(entry) { return entry }
            usleep(200_000)
        }
        throw TestSupportError("ls never showed \(pid) as wanted: \(try list())")
    }

    /// After a copy ended: `ls` shows its result and its socket is gone.
    func expectDone(_ pid: pid_t, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let entry = try list().first { $0["pid"] as? Int == Int(pid) }
        #expect(entry?["state"] as? String == "done" && entry?["exit"] as? Int == 0 && entry?["mode"] as? String == "copy", "\(entry ?? [:])",
                sourceLocation: sourceLocation)
        #expect(!FileManager.default.fileExists(atPath: socket(pid)), "socket removed", sourceLocation: sourceLocation)
        let result = try parseJSON(try String(contentsOfFile: "\(directory)/\(pid).result.json", encoding: .utf8))
        #expect((result["conns"] as? [[String: Any]])?.allSatisfy { $0["stall_episodes"] is Int } == true,
                "per-connection stall figures: \(result)", sourceLocation: sourceLocation)
    }

    /// `nbdcopy ARGUMENTS` run as virt-v2v would, through a symlink named `nbdcopy`, once
    /// `ls` lists it as running.
    func startedStandIn(_ arguments: [String]) throws -> BackgroundCommand {
        let standIn = folder.file("nbdcopy")
        if !FileManager.default.fileExists(atPath: standIn) {
            guard symlink(try CommandRunner.nbdtopBinary(), standIn) == 0 else { throw TestSupportError("cannot make \(standIn)") }
        }
        let copy = try BackgroundCommand([standIn] + arguments, environment: environment)
        do {
            _ = try waitUntilListed(copy.pid, timeout: .seconds(30)) { $0["state"] as? String == "running" }
        } catch {
            copy.stop()
            throw error
        }
        return copy
    }

    /// A headless `nbdtop copy --stats-json - ARGUMENTS` once it has moved bytes and its
    /// control socket answers.
    func startedCopy(_ arguments: [String]) throws -> BackgroundCommand {
        let copy = try BackgroundCommand([try CommandRunner.nbdtopBinary(), "copy", "--stats-json", "-"] + arguments,
                                         environment: environment)
        let running = try copy.waitUntil(timeout: .seconds(30)) {
            try StatsLog(copy.stdout, partial: true).samples.contains { ($0.uint("bytes_done") ?? 0) > 0 }
                && FileManager.default.fileExists(atPath: socket(copy.pid))
        }
        guard running && copy.exitStatus == nil else {
            copy.stop()
            throw TestSupportError("copy did not start: \(copy.stderr)")
        }
        return copy
    }

    /// 32 MiB of nbdkit's pattern at about 4 MB/s in all: some 8 s to copy.
    static func slowPattern() throws -> ServerProcess {
        try ServerProcess.nbdkit(["pattern", "32M", "rate=32M", "burstiness=0.1"], filters: ["rate"], options: ["-r"])
    }

    static func mode(_ path: String) throws -> mode_t {
        var status = stat()
        guard lstat(path, &status) == 0 else { throw TestSupportError("cannot stat \(path)") }
        return status.st_mode & 0o777
    }

    /// Connects to `socket` as uid 65534 (with CAP_DAC_OVERRIDE when `overridingPermissions`,
    /// so that file modes do not stop it), sends `stop`, and says what it could read.
    static func otherUserClient(_ socket: String, overridingPermissions: Bool) throws -> CommandResult {
        let capabilities = overridingPermissions ? ["--inh-caps=+dac_override", "--ambient-caps=+dac_override"] : []
        // The copy may close the connection before the command is sent: no SIGPIPE death.
        let script = """
            $SIG{PIPE} = "IGNORE";
            my $s = IO::Socket::UNIX->new(Peer => $ARGV[0]) or do { print "refused: $!\\n"; exit 0 };
            print $s "{\\"cmd\\":\\"stop\\"}\\n";
            my $n = sysread($s, my $b, 65536);
            print "connected, read ", ($n // -1), " bytes\\n";
            """
        return try CommandRunner.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] + capabilities
                                     + ["perl", "-MIO::Socket::UNIX", "-e", script, socket], timeout: .seconds(30))
    }
}
