import Foundation
import NBDTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `nbdtop attach`: the dashboard of a headless copy in another process, in a real
/// terminal (tmux), against a rate-limited nbdkit. Every run has its own control folder
/// (`XDG_RUNTIME_DIR` in a temp folder).
///
/// Serialized: the machine has 2 cores.
@Suite(.serialized, .timeLimit(.minutes(3))) struct AttachTests {
    /// 64 MiB at 4 MB/s for the whole server: about 16 s, so the copy outlives the keys.
    static func source() throws -> ServerProcess {
        try ServerProcess.nbdkit(["pattern", "64M", "rate=32M", "burstiness=0.1"], filters: ["rate"], options: ["-r"])
    }

    /// `attach PID` shows the copy's rows (one per lane: the destination is a file); `+` adds a lane, which the copy's own
    /// `--stats-json` reports; `q` detaches at once (exit 0) and the copy goes on to a
    /// verified end.
    @Test func addLaneThenDetachLeavesTheCopyRunning() throws {
        let run = try ControlRun()
        defer { run.remove() }
        let source = try Self.source()
        defer { source.stop() }
        let output = run.folder.file("out.img")
        let copy = try run.startedCopy(["-C", "1", "-R", "8", source.uri, output])
        defer { copy.stop() }
        let attach = try DashboardRun(environment: run.environment) { _ in ["attach", "\(copy.pid)"] }
        defer { attach.stop() }
        let terminal = attach.terminal

        // A file destination has no connections of its own: one row per lane, as in the
        // copy's own dashboard (the start line says so).
        try terminal.waitForScreen("one lane row") { screen in
            let table = DashboardScreen(screen)
            return screen.contains("lanes 1/") && table.sourceRows.count == 1 && table.destinationRows.isEmpty
        }
        #expect(try terminal.alternateScreenOn, "attach uses the alternate screen")
        // The verdict comes with the copy's samples: the capped source is the limit.
        try terminal.waitForText("bottleneck: source")
        #expect(try terminal.capture().contains("q detach"), "the footer says q detaches")

        try terminal.type("+")
        try terminal.waitForScreen("two source rows") { screen in
            screen.contains("lanes 2/") && DashboardScreen(screen).sourceRows.map(\.lane) == [1, 2]
        }
        let added = try copy.waitUntil(timeout: .seconds(15)) {
            try StatsLog(copy.stdout, partial: true).events("lane_added").contains { $0.int("id") == 2 }
        }
        #expect(added, "no lane_added 2 in the copy's --stats-json: \(copy.stderr)")
        try terminal.waitForText("lane 2 added")

        try terminal.type("q")
        try terminal.waitForExit()
        #expect(attach.exitStatus == 0, "a detach exits 0: \(attach.failureContext)")
        attach.expectTerminalRestored()
        let screen = try terminal.capture(history: true, joined: true)
        #expect(screen.contains("detached from copy \(copy.pid)"), "the screen says it detached:\n\(screen)")
        #expect(copy.exitStatus == nil, "the copy still runs after the detach: \(copy.stderr)")

        #expect(copy.wait(timeout: .seconds(120)) == 0, "\(copy.stderr)")
        let log = try StatsLog(copy.stdout)
        #expect(log.events("lane_added").compactMap { $0.int("id") } == [1, 2], "exactly one lane added by +")
        #expect(log.done?.int("exit") == 0 && log.done?.uint("bytes_done") == 64 << 20, "\(log.done?.text ?? "")")
        #expect(try ImageCheck.firstPatternMismatch(inFile: output) == nil)
        try run.expectDone(copy.pid)
    }

    /// A copy made by the nbdcopy stand-in, as virt-v2v would run it, is attached to like
    /// any other (no argument: it is the only copy): its dashboard, then `q` detaches, and
    /// the copy ends by itself, intact.
    @Test func attachFollowsACopyStartedAsNbdcopy() throws {
        let run = try ControlRun()
        defer { run.remove() }
        let source = try Self.source()
        defer { source.stop() }
        let output = run.folder.file("out.img")
        let copy = try run.startedStandIn([source.uri, output, "--request-size=1048576", "--requests=8", "--flush"])
        defer { copy.stop() }
        let attach = try DashboardRun(environment: run.environment) { _ in ["attach"] }
        defer { attach.stop() }
        let terminal = attach.terminal
        let screen = try terminal.waitForScreen("the stand-in's lane rows") { DashboardScreen($0).sourceRows.count >= 1 }
        #expect(screen.contains(source.uri) && screen.contains(output), "the header names the copy:\n\(screen)")
        try terminal.type("q")
        try terminal.waitForExit()
        #expect(attach.exitStatus == 0, "a detach exits 0: \(attach.failureContext)")
        #expect(copy.exitStatus == nil, "the copy still runs after the detach: \(copy.stderr)")
        #expect(copy.wait(timeout: .seconds(120)) == 0, "\(copy.stderr)")
        #expect(try ImageCheck.firstPatternMismatch(inFile: output) == nil)
    }

    /// Without an argument attach picks the only running copy; `S` asks y/n, `y` stops the
    /// copy, and attach shows its summary and exits with the copy's status (130).
    @Test func stopKeyEndsTheCopyAndAttachExitsWithItsStatus() throws {
        let run = try ControlRun()
        defer { run.remove() }
        let source = try Self.source()
        defer { source.stop() }
        let copy = try run.startedCopy(["-C", "2", "-R", "4", source.uri, "null:"])
        defer { copy.stop() }
        let attach = try DashboardRun(environment: run.environment) { _ in ["attach"] }
        defer { attach.stop() }
        let terminal = attach.terminal

        try terminal.waitForScreen("two source rows") { DashboardScreen($0).sourceRows.count == 2 }
        try terminal.type("S")
        try terminal.waitForText("Stop the copy? y")
        try terminal.type("n")
        try terminal.type("S")
        try terminal.waitForText("Stop the copy? y")
        #expect(copy.exitStatus == nil, "n kept the copy running")
        try terminal.type("y")
        try terminal.waitForExit(timeout: .seconds(60))

        #expect(copy.wait(timeout: .seconds(30)) == 130, "\(copy.stderr)")
        #expect(attach.exitStatus == 130, "attach exits with the copy's status: \(attach.failureContext)")
        attach.expectTerminalRestored()
        let screen = try terminal.capture(history: true, joined: true)
        #expect(screen.contains("copied "), "the summary stays on the normal screen:\n\(screen)")
        #expect(screen.contains("copy \(copy.pid) ended: exit 130"), "\(screen)")
    }

    /// A copy killed while attached (`attach PATH`; SIGKILL: no `done` line) ends the dashboard: the
    /// terminal is given back, the summary printed, and attach says so and exits 1.
    @Test func copyKilledWhileAttachedRestoresTheTerminal() throws {
        let run = try ControlRun()
        defer { run.remove() }
        let source = try Self.source()
        defer { source.stop() }
        let copy = try run.startedCopy(["-C", "1", source.uri, "null:"])
        defer { copy.stop() }
        // By the socket's path, as for a copy started with --control PATH.
        let attach = try DashboardRun(environment: run.environment) { _ in ["attach", run.socket(copy.pid)] }
        defer { attach.stop() }
        try attach.terminal.waitForScreen("the source row") { DashboardScreen($0).sourceRows.count == 1 }
        copy.signal(SIGKILL)
        try attach.terminal.waitForExit()
        #expect(attach.exitStatus == 1, "\(attach.failureContext)")
        attach.expectTerminalRestored()
        let screen = try attach.terminal.capture(history: true, joined: true)
        #expect(screen.contains("copy \(copy.pid) went away without saying how it ended"), "\(screen)")
    }

    /// `nbdtop` alone on a terminal lists every running copy; `↓` and Enter attach to the
    /// second, whose dashboard shows its destination; `q` detaches and both copies go on.
    @Test func aloneListsRunningCopiesAndEnterAttaches() throws {
        let run = try ControlRun()
        defer { run.remove() }
        let source = try Self.source()
        defer { source.stop() }
        let copies = try ["first.img", "second.img"].map { name in
            (name, try run.startedCopy(["-C", "1", source.uri, run.folder.file(name)]))
        }
        defer { for (_, copy) in copies { copy.stop() } }
        let top = try DashboardRun(environment: run.environment) { _ in [] }
        defer { top.stop() }
        let terminal = top.terminal

        try terminal.waitForScreen("both copies listed") { screen in
            let rows = screen.split(separator: "\n").map { $0.dropFirst() }
            return screen.contains("2 running copies") && copies.allSatisfy { copy in rows.contains { $0.hasPrefix("\(copy.1.pid)  ") } }
        }
        let (name, chosen) = try #require(copies.max { $0.1.pid < $1.1.pid }, "the list is in pid order")
        try terminal.sendKeys("Down")
        try terminal.waitForText(">\(chosen.pid)  ")
        try terminal.sendKeys("Enter")
        try terminal.waitForScreen("the dashboard of the chosen copy") { screen in
            screen.contains(name) && screen.contains("q detach") && DashboardScreen(screen).sourceRows.count == 1
        }
        try terminal.type("q")
        try terminal.waitForExit()
        #expect(top.exitStatus == 0, "\(top.failureContext)")
        top.expectTerminalRestored()
        #expect(try terminal.capture(history: true, joined: true).contains("detached from copy \(chosen.pid)"))
        #expect(copies.allSatisfy { $0.1.exitStatus == nil }, "both copies still run")
    }

    /// Not on a terminal, `nbdtop` alone prints the help.
    @Test func aloneWithoutATerminalPrintsTheHelp() throws {
        let run = try ControlRun()
        defer { run.remove() }
        let result = try run.nbdtop([])
        #expect(result.stdout.contains("SUBCOMMANDS") && result.stdout.contains("attach"), "\(result.stdout)")
    }

    /// Not on a terminal: with two copies running, attach without an argument lists them
    /// and exits 2; naming a pid that has no socket fails.
    @Test func withoutATerminalSeveralCopiesAreListed() throws {
        let run = try ControlRun()
        defer { run.remove() }
        let source = try Self.source()
        defer { source.stop() }
        let first = try run.startedCopy(["-C", "1", source.uri, "null:"])
        defer { first.stop() }
        let second = try run.startedCopy(["-C", "1", source.uri, "null:"])
        defer { second.stop() }

        let listed = try run.nbdtop(["attach"])
        #expect(listed.status == 2, "\(listed.stdout) \(listed.stderr)")
        for pid in [first.pid, second.pid] {
            #expect(listed.stdout.split(separator: "\n").contains { $0.hasPrefix("\(pid)  ") }, "\(listed.stdout)")
        }
        #expect(listed.stderr.contains("2 copies are running"), "\(listed.stderr)")

        let missing = try run.nbdtop(["attach", "999999"])
        #expect(missing.status == 1 && missing.stderr.contains("999999"), "\(missing.status) \(missing.stderr)")
    }
}
