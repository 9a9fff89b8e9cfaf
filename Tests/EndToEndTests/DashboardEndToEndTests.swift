import Foundation
import NBDTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The dashboard in a real terminal: nbdtop runs in a private tmux (120×40, xterm-256color,
/// UTF-8) against real nbdkit servers; keys go in with `send-keys`, the screen comes back
/// with `capture-pane`. Each run is `sh -c 'trap : INT; stty -a; nbdtop …; echo $?; stty -a'`
/// so the terminal modes before and after and the exit status can be checked from files.
///
/// Serialized: the stall test reads latencies, and the machine has 2 cores.
@Suite(.serialized, .timeLimit(.minutes(2))) struct DashboardEndToEndTests {
    // MARK: Keys

    /// `+` twice, `-` once, then `q` `y`, against a source capped at 10 MB/s per
    /// connection (8 GiB: it never ends by itself).
    @Test func addDropAndQuitRestoreTheTerminal() throws {
        let source = try ServerProcess.nbdkit(["pattern", "8G", "connection-rate=80M", "burstiness=0.1"],
                                              filters: ["noextents", "rate"], options: ["-r"])
        defer { source.stop() }
        let run = try DashboardRun { folder in
            ["copy", "-C", "1", "--stats-json", folder.file("stats.jsonl"), source.uri, "null:"]
        }
        defer { run.stop() }
        let stats = run.folder.file("stats.jsonl")
        let terminal = run.terminal

        try terminal.waitForText("lanes 1/")
        #expect(try terminal.alternateScreenOn, "the dashboard uses the alternate screen")
        let firstStart = try StatsLines.wait(stats, "the start event") { $0.first?.event == "start" }
        #expect(firstStart.first?.int("lanes") == 1)

        try terminal.type("+")
        try terminal.type("+")
        try terminal.waitForText("lanes 3/")
        let added = try StatsLines.wait(stats, "lane_added 2 and 3") { lines in
            Set(lines.filter { $0.event == "lane_added" }.compactMap { $0.int("id") }).isSuperset(of: [2, 3])
        }
        // Lane 1's own lane_added comes first; the keys add exactly two more. The two adds
        // connect at the same time, so lanes 2 and 3 may announce themselves in either order.
        let addedIDs = added.filter { $0.event == "lane_added" }.compactMap { $0.int("id") }
        #expect(addedIDs.first == 1 && addedIDs.sorted() == [1, 2, 3], "lane_added ids \(addedIDs)")
        #expect(added.firstIndex { $0.event == "start" } == 0)
        try terminal.waitForText("lane 3 added")

        try terminal.type("-")
        try terminal.waitForText("lanes 2/")
        let dropped = try StatsLines.wait(stats, "lane_dropped") { $0.contains { $0.event == "lane_dropped" } }
        #expect(dropped.filter { $0.event == "lane_dropped" }.compactMap { $0.int("id") } == [3],
                "the newest lane is dropped when none is selected")
        try terminal.waitForText("lane 3 dropped")

        try run.quitConfirmed()

        #expect(run.exitStatus == 130, "q y stops the copy as Ctrl-C does: \(run.failureContext)")
        run.expectTerminalRestored()
        let screen = try terminal.capture(history: true, joined: true)
        #expect(screen.contains("copied "), "the summary stays on the normal screen:\n\(screen)")
        #expect(screen.contains("lane side state"), "the per-connection summary:\n\(screen)")
        #expect(!screen.contains("q quit"), "the dashboard is gone:\n\(screen)")
        let final = try StatsLines.read(stats)
        #expect(final.last?.event == "done" && final.last?.int("exit") == 130, "\(final.last?.text ?? "")")
    }

    // MARK: Failure

    enum Failure: String, CaseIterable, CustomTestStringConvertible {
        /// Every read fails with EIO once a file exists (nbdkit's error filter).
        case readErrors
        /// The source server is killed with SIGKILL.
        case sourceKilled

        var testDescription: String { rawValue }
    }

    /// A copy that fails while the dashboard is open gives the terminal back and prints
    /// the error naming the source; exit status 1.
    @Test(arguments: Failure.allCases)
    func failingCopyRestoresTheTerminalAndPrintsTheError(failure: Failure) throws {
        let switches = try TemporaryDirectory(prefix: "nbdtop-inject")
        defer { switches.remove() }
        let inject = switches.file("inject")
        let source = try ServerProcess.nbdkit(
            ["pattern", "8G", "connection-rate=80M", "burstiness=0.1",
             "error-pread=EIO", "error-pread-rate=100%", "error-pread-file=\(inject)"],
            filters: ["noextents", "error", "rate"], options: ["-r"])
        defer { source.stop() }
        let run = try DashboardRun { _ in ["copy", "-C", "2", source.uri, "null:"] }
        defer { run.stop() }
        let terminal = run.terminal

        // Wait until data moves: the failure must come while the copy runs.
        try terminal.waitForScreen("the dashboard with bytes copied") { screen in
            screen.contains("lanes 2/") && DashboardScreen(screen).sourceRows.contains { $0.bytes > 0 }
        }
        switch failure {
        case .readErrors:
            #expect(FileManager.default.createFile(atPath: inject, contents: nil))
        case .sourceKilled:
            source.signal(SIGKILL)
        }
        try terminal.waitForExit()

        #expect(run.exitStatus == 1, "\(run.failureContext)")
        run.expectTerminalRestored()
        let screen = try terminal.capture(history: true, joined: true)
        let errorLine = screen.split(separator: "\n").first { $0.hasPrefix("nbdtop: ") }.map(String.init) ?? ""
        #expect(errorLine.contains("failed"), "an error line on the normal screen:\n\(screen)")
        #expect(errorLine.contains(source.socketPath), "the error names the source:\n\(screen)")
        if failure == .readErrors {
            #expect(errorLine.contains("EIO"), "the error says EIO:\n\(screen)")
        }
        #expect(screen.contains("copied "), "the summary is printed too:\n\(screen)")
        #expect(!screen.contains("q quit"), "the dashboard is gone:\n\(screen)")
    }

    // MARK: Reconnecting

    /// The source is killed with `--reconnect`: while it is down each of its rows shows
    /// `recon<N>`, N the attempt; once it is back they are `active` again and the copy goes on.
    @Test func aSourceThatIsDownShowsItsRowsReconnectingUntilItIsBack() throws {
        let source = try ServerProcess.nbdkit(["pattern", "8G", "connection-rate=80M", "burstiness=0.1"],
                                              filters: ["noextents", "rate"], options: ["-r"])
        defer { source.stop() }
        let run = try DashboardRun { folder in
            ["copy", "-C", "2", "--reconnect", "60s", "--stats-json", folder.file("stats.jsonl"), source.uri, "null:"]
        }
        defer { run.stop() }
        let terminal = run.terminal
        try terminal.waitForScreen("the dashboard with bytes copied") { screen in
            screen.contains("lanes 2/") && DashboardScreen(screen).sourceRows.contains { $0.bytes > 0 }
        }
        source.crash()
        try terminal.waitForScreen("both source rows at a reconnect attempt") { screen in
            let rows = DashboardScreen(screen).sourceRows
            return rows.count == 2 && rows.allSatisfy { ($0.reconnectAttempt ?? 0) >= 1 }
        }
        try source.restart()
        let back = try terminal.waitForScreen("both source rows active again") { screen in
            let rows = DashboardScreen(screen).sourceRows
            return rows.count == 2 && rows.allSatisfy { $0.state == "active" }
        }
        #expect(back.contains("lane 1 src reconnected") && back.contains("lane 2 src reconnected"), "the events say so:\n\(back)")
        try run.quitConfirmed()
        #expect(run.exitStatus == 130, "\(run.failureContext)")
        run.expectTerminalRestored()
        let events = try StatsLines.read(run.folder.file("stats.jsonl")).compactMap(\.event)
        #expect(events.filter { $0 == "lane_reconnected" }.count == 2, "\(events)")
    }

    // MARK: Stall

    /// One request on one connection takes 6 s; the connections answer in order
    /// (noparallel), so the 3 requests sent behind it on that connection wait too. While it
    /// is pending exactly that source row shows the stall marker and stops moving; the
    /// others keep copying.
    @Test func slowRequestMarksOnlyItsRowWhileOthersMove() throws {
        let switches = try TemporaryDirectory(prefix: "nbdtop-stall")
        defer { switches.remove() }
        let trigger = switches.file("slow"), claimed = switches.file("claimed")
        // Once `slow` exists, the first read to claim it (mkdir is atomic) sleeps: exactly
        // one slow request, on whichever connection asks next.
        let pread = "if [ -e \(trigger) ] && mkdir \(claimed) 2>/dev/null; then sleep 6; fi; head -c \"$3\" /dev/zero"
        let source = try ServerProcess.nbdkit([
            "eval", "get_size=echo 64G", "pread=\(pread)",
            "can_multi_conn=exit 0", "thread_model=echo parallel", "can_extents=exit 3", "can_write=exit 3",
            "serialize=requests", "connection-rate=160M", "burstiness=0.1",
        ], filters: ["noparallel", "rate"])
        defer { source.stop() }
        let run = try DashboardRun { _ in
            ["copy", "-C", "3", "--request-size", "1M", "-R", "4", "--stall-threshold", "1s", source.uri, "null:"]
        }
        defer { run.stop() }
        let terminal = run.terminal

        try terminal.waitForScreen("three moving source rows") { screen in
            let rows = DashboardScreen(screen).sourceRows
            return rows.count == 3 && rows.allSatisfy { $0.bytes > 0 }
        }
        #expect(FileManager.default.createFile(atPath: trigger, contents: nil))
        let first = DashboardScreen(try terminal.waitForScreen(timeout: .seconds(10), "a stall marker") { screen in
            DashboardScreen(screen).sourceRows.contains(where: \.stalled)
        })
        usleep(1_500_000)
        let second = DashboardScreen(try terminal.capture())
        // Still inside the 6 s of the slow request.
        #expect(FileManager.default.fileExists(atPath: claimed))

        for (name, screen) in [("first", first), ("second", second)] {
            let stalled = screen.sourceRows.filter(\.stalled)
            #expect(stalled.count == 1, "\(name) capture: exactly one source row stalled:\n\(screen.text)")
            #expect(screen.destinationRows.allSatisfy { !$0.stalled }, "\(name) capture:\n\(screen.text)")
            #expect(screen.text.contains("1 stalled"), "\(name) capture: the header counts it:\n\(screen.text)")
        }
        let stalledRow = first.sourceRows.first { $0.stalled }
        let stalledLane = try #require(stalledRow).lane
        #expect(second.sourceRows.first(where: \.stalled)?.lane == stalledLane,
                "the same row stays stalled:\n\(first.text)\n\(second.text)")
        for before in first.sourceRows {
            let after = try #require(second.sourceRows.first { $0.lane == before.lane }, "lane \(before.lane) gone:\n\(second.text)")
            if before.lane == stalledLane {
                #expect(after.bytes == before.bytes, "the stalled lane moves nothing: \(before.line)\n\(after.line)")
            } else {
                #expect(after.bytes > before.bytes, "lane \(before.lane) keeps moving: \(before.line)\n\(after.line)")
            }
        }

        // When the slow request is answered the marker goes away.
        try terminal.waitForScreen(timeout: .seconds(15), "the stall to end") { screen in
            let rows = DashboardScreen(screen).sourceRows
            return rows.count == 3 && !rows.contains(where: \.stalled)
        }
        try run.quitConfirmed()
        #expect(run.exitStatus == 130, "\(run.failureContext)")
        run.expectTerminalRestored()
    }

    // MARK: Demo

    /// `nbdtop demo` needs no arguments, shows its hint, and `q` `y` ends it and its
    /// captive servers with the terminal as it was.
    @Test func demoShowsItsHintAndQuits() throws {
        let run = try DashboardRun { _ in ["demo"] }
        defer { run.stop() }
        let terminal = run.terminal
        try terminal.waitForText("press +")
        try terminal.waitForText("lanes 1/")
        let servers = terminal.paneDescendants().filter { $0.commandLine.hasPrefix("nbdkit") }
        #expect(!servers.isEmpty, "the demo's captive nbdkit runs: \(terminal.paneDescendants())")

        try run.quitConfirmed()
        #expect(run.exitStatus == 0, "\(run.failureContext)")
        run.expectTerminalRestored()
        let screen = try terminal.capture(history: true, joined: true)
        #expect(screen.contains("copied "), "the summary stays on the normal screen:\n\(screen)")
        let deadline = ContinuousClock.now + .seconds(10)
        while servers.contains(where: { ProcessTable.isAlive($0.pid) }) && ContinuousClock.now < deadline { usleep(20_000) }
        let left = servers.filter { ProcessTable.isAlive($0.pid) }
        #expect(left.isEmpty, "captive servers left running: \(left)")
    }
}

// MARK: - Support

/// nbdtop running in a fresh private tmux, wrapped in a script that records the terminal
/// modes before and after and the exit status.
final class DashboardRun: @unchecked Sendable {
    let folder: TemporaryDirectory
    let terminal: TmuxSession

    /// Starts `nbdtop ARGUMENTS` in a new 120×40 terminal, with `environment` added;
    /// `arguments` gets the run's folder for files such as `--stats-json`.
    init(environment: [String: String] = [:], _ arguments: (TemporaryDirectory) throws -> [String]) throws {
        folder = try TemporaryDirectory(prefix: "nbdtop-tui")
        do {
            terminal = try TmuxSession(columns: 120, rows: 40)
        } catch {
            folder.remove()
            throw error
        }
        let command = [try CommandRunner.nbdtopBinary()] + (try arguments(folder))
        // `2>` stays on the terminal: the error must be on the normal screen.
        let lines = [
            "export TERM=xterm-256color LANG=C.UTF-8",
            "unset LC_ALL LC_CTYPE NO_COLOR COLUMNS LINES",
        ] + environment.sorted { $0.key < $1.key }.map { "export \($0.key)=\(ShellQuote.word($0.value))" } + [
            "cd \(ShellQuote.word(folder.path)) || exit 99",
            // As an interactive shell does, outlive the Ctrl-C meant for nbdtop (a trap,
            // unlike ignoring it, is not inherited), so the status and modes get recorded.
            "trap : INT",
            "stty -a > stty.before 2>&1",
            ShellQuote.command(command),
            "echo $? > status",
            "stty -a > stty.after 2>&1",
        ]
        do {
            try terminal.start(script: lines.joined(separator: "\n") + "\n")
        } catch {
            stop()
            throw error
        }
    }

    func stop() {
        terminal.stop()
        folder.remove()
    }

    /// `q`, then `y` at its prompt: the copy stops (exit 130) and the script ends.
    func quitConfirmed() throws {
        try terminal.type("q")
        try terminal.waitForText("Stop the copy and quit?")
        try terminal.type("y")
        try terminal.waitForExit()
    }

    private func read(_ name: String) -> String {
        (try? String(contentsOfFile: folder.file(name), encoding: .utf8)) ?? ""
    }

    /// nbdtop's exit status, once the script has written it.
    var exitStatus: Int32? { Int32(read("status").trimmingCharacters(in: .whitespacesAndNewlines)) }

    /// The screen and what was recorded, for failure messages.
    var failureContext: String {
        let screen = (try? terminal.capture(history: true, joined: true)) ?? "(no screen)"
        return "status \(read("status").trimmingCharacters(in: .whitespacesAndNewlines)); screen:\n\(screen)"
    }

    /// After nbdtop: echo and canonical input are on, every mode is as before it started,
    /// and the pane is back on the normal screen.
    func expectTerminalRestored(sourceLocation: SourceLocation = #_sourceLocation) {
        let before = read("stty.before"), after = read("stty.after")
        let flags = Set(after.split { $0 == " " || $0 == ";" || $0 == "\n" }.map(String.init))
        #expect(flags.contains("icanon") && !flags.contains("-icanon"), "canonical input: \(after)", sourceLocation: sourceLocation)
        #expect(flags.contains("echo") && !flags.contains("-echo"), "echo: \(after)", sourceLocation: sourceLocation)
        #expect(!before.isEmpty && after == before, "modes before:\n\(before)\nafter:\n\(after)", sourceLocation: sourceLocation)
        #expect((try? terminal.alternateScreenOn) == false, "the alternate screen is left", sourceLocation: sourceLocation)
    }
}

extension TmuxSession {
    /// The screen with wrapped lines joined (long paths in error messages stay whole).
    func capture(history: Bool, joined: Bool) throws -> String {
        var arguments = ["capture-pane", "-p", "-t", name]
        if history { arguments += ["-S", "-"] }
        if joined { arguments.append("-J") }
        return try tmux(arguments)
    }
}

/// The connection table read back from a captured screen.
struct DashboardScreen {
    struct Row {
        var lane: Int
        var state: String
        /// The `bytes` column (shown at 120 columns), in bytes as displayed.
        var bytes: Double
        /// The stall marker (⚠, or ! in ASCII) is in the row.
        var stalled: Bool
        /// N of a `recon<N>` state; nil in any other.
        var reconnectAttempt: Int? {
            state.hasPrefix("recon") ? Int(state.dropFirst("recon".count)) : nil
        }
        var line: String
    }

    let text: String
    let sourceRows: [Row]
    let destinationRows: [Row]

    init(_ text: String) {
        self.text = text
        var source: [Row] = [], destination: [Row] = []
        var side: String?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            // A destination without connections of its own (null:) has one row per lane.
            if line.hasPrefix(" source ") || line.hasPrefix(" lanes ") { side = "src"; continue }
            if line.hasPrefix(" destination ") { side = "dst"; continue }
            guard let side else { continue }
            guard let row = Self.row(line) else {
                if line.trimmingCharacters(in: .whitespaces).isEmpty || line.hasPrefix("─") { break }
                continue
            }
            if side == "src" { source.append(row) } else { destination.append(row) }
        }
        sourceRows = source
        destinationRows = destination
    }

    static let states: Set<String> = ["conn", "active", "drain", "closed", "failed"]

    /// `   2 active  29.5MiB/s  ▆█   4 █████ 45.3ms  931ms  1.47s ⚠   3  1.29s   0  116.0MiB     0`
    static func row(_ line: String) -> Row? {
        var words = line.split(separator: " ").map(String.init)
        if words.first == ">" { words.removeFirst() }
        if let first = words.first, first.hasPrefix(">") { words[0] = String(first.dropFirst()) }
        guard words.count >= 3, let lane = Int(words[0]),
              states.contains(words[1]) || words[1].hasPrefix("recon") else { return nil }
        let bytes = words.compactMap(byteCount).last ?? -1
        let stalled = words.contains("⚠") || words.contains("!")
        return Row(lane: lane, state: words[1], bytes: bytes, stalled: stalled, line: line)
    }

    /// `116.0MiB` → bytes; rates (`/s`) and anything else → nil.
    static func byteCount(_ word: String) -> Double? {
        let units: [(String, Double)] = [("KiB", 0x1p10), ("MiB", 0x1p20), ("GiB", 0x1p30), ("TiB", 0x1p40), ("B", 1)]
        for (unit, scale) in units where word.hasSuffix(unit) {
            guard let number = Double(word.dropLast(unit.count)) else { return nil }
            return number * scale
        }
        return nil
    }
}

/// The `--stats-json` file as it grows.
enum StatsLines {
    struct Line {
        let text: String
        let object: [String: Any]
        var event: String? { object["event"] as? String }
        func int(_ key: String) -> Int? { (object[key] as? NSNumber)?.intValue }
    }

    /// The complete lines so far (a line still being written is left out).
    static func read(_ path: String) throws -> [Line] {
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        return try text.split(separator: "\n").compactMap { raw in
            guard let object = try? JSONSerialization.jsonObject(with: Data(raw.utf8)) as? [String: Any] else {
                if raw == text.split(separator: "\n").last && !text.hasSuffix("\n") { return nil }
                throw TestSupportError("not a JSON object: \(raw)")
            }
            return Line(text: String(raw), object: object)
        }
    }

    /// Polls the file until `condition` holds (up to `timeout`); returns its lines.
    static func wait(_ path: String, _ what: String, timeout: Duration = .seconds(15),
                     _ condition: ([Line]) -> Bool) throws -> [Line] {
        let deadline = ContinuousClock.now + timeout
        while true {
            let lines = try read(path)
            if condition(lines) { return lines }
            if ContinuousClock.now > deadline {
                throw TestSupportError("timed out waiting for \(what) in --stats-json:\n\(lines.map(\.text).joined(separator: "\n"))")
            }
            usleep(50_000)
        }
    }
}
