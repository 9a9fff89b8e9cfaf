import Foundation
import NBDTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Stop signals while the dashboard is up, in a real terminal (tmux): whichever way nbdtop
/// ends, echo and canonical input are back, the alternate screen is gone, and the exit
/// status and the last `--stats-json` line name the signal.
/// (SIGHUP is not one of them with the dashboard up: it means the terminal went away, and
/// the copy goes on; see `ControlSocketTests`.)
///
/// Serialized: the machine has 2 cores.
@Suite(.serialized, .timeLimit(.minutes(2))) struct DashboardExitTests {
    struct Stop: Sendable, CustomTestStringConvertible {
        var signal: Int32
        var name: String
        var exitStatus: Int32
        /// How many are sent; a second one while the source is paused must exit at once.
        var count: Int
        var testDescription: String { count == 1 ? name : "\(name) ×\(count)" }
    }

    /// Two Ctrl-C's in a row while requests hang on a paused source: the second exits at
    /// once, and still gives the terminal back.
    @Test func twoCtrlCsRestoreTheTerminal() throws {
        let (run, pause, source) = try Self.startedDashboard(pausable: true)
        defer { run.stop(); source.stop(); pause.remove() }
        try pause.pause()
        try run.terminal.sendKeys("C-c")
        try Self.waitUntilDraining(run)
        ExitPathTests.waitPastTheSameSignalWindow()
        try run.terminal.sendKeys("C-c")
        // A clean stop would wait a minute for the paused source before giving up.
        try run.terminal.waitForExit(timeout: .seconds(30))
        #expect(run.exitStatus == 130, "\(run.failureContext)")
        run.expectTerminalRestored()
        let screen = try run.terminal.capture(history: true, joined: true)
        #expect(screen.contains("Ctrl-C again: exiting at once"), "said on the normal screen:\n\(screen)")
        try Self.expectDone(run, exit: 130)
    }

    @Test(arguments: [
        Stop(signal: SIGTERM, name: "SIGTERM", exitStatus: 143, count: 1),
        Stop(signal: SIGTERM, name: "SIGTERM", exitStatus: 143, count: 2),
    ])
    func stopSignalRestoresTheTerminal(stop: Stop) throws {
        let (run, pause, source) = try Self.startedDashboard(pausable: stop.count > 1)
        defer { run.stop(); source.stop(); pause.remove() }
        if stop.count > 1 { try pause.pause() }
        let nbdtop = try #require(run.nbdtopPid, "nbdtop in the pane: \(run.terminal.paneDescendants())")
        kill(nbdtop, stop.signal)
        if stop.count > 1 {
            try Self.waitUntilDraining(run)
            ExitPathTests.waitPastTheSameSignalWindow()
            kill(nbdtop, stop.signal)
        }
        try run.terminal.waitForExit(timeout: .seconds(30))
        #expect(run.exitStatus == stop.exitStatus, "\(run.failureContext)")
        run.expectTerminalRestored()
        let screen = try run.terminal.capture(history: true, joined: true)
        if stop.count == 1 {
            #expect(screen.contains("copied "), "the summary stays on the normal screen:\n\(screen)")
            #expect(screen.contains("stopped by \(stop.name)"), "\(screen)")
        } else {
            #expect(screen.contains("\(stop.name) again: exiting at once"), "\(screen)")
        }
        try Self.expectDone(run, exit: stop.exitStatus)
    }

    // MARK: Helpers

    /// A dashboard copy from an endless source (8 GiB at 10 MB/s per connection, behind a
    /// pause switch when `pausable`) to `null:`, once the table shows bytes copied.
    static func startedDashboard(pausable: Bool) throws -> (DashboardRun, PauseSwitch, ServerProcess) {
        let pause = try PauseSwitch()
        let source = try ServerProcess.nbdkit(
            ["pattern", "8G", "connection-rate=80M", "burstiness=0.1"] + (pausable ? [pause.argument] : []),
            filters: ["noextents"] + (pausable ? ["pause"] : []) + ["rate"], options: ["-r"])
        let run = try DashboardRun { folder in
            ["copy", "-C", "2", "-R", "4", "--stats-json", folder.file("stats.jsonl"), source.uri, "null:"]
        }
        do {
            try run.terminal.waitForScreen("the dashboard with bytes copied") { screen in
                screen.contains("lanes 2/") && DashboardScreen(screen).sourceRows.contains { $0.bytes > 0 }
            }
        } catch {
            run.stop()
            source.stop()
            pause.remove()
            throw error
        }
        return (run, pause, source)
    }

    /// Waits until the first stop signal shows: the lanes drain. (A second signal sent
    /// before the first is taken would merge with it: the kernel keeps one pending.)
    static func waitUntilDraining(_ run: DashboardRun) throws {
        try run.terminal.waitForScreen("lanes draining") { screen in
            DashboardScreen(screen).sourceRows.contains { $0.state == "drain" }
        }
    }

    static func expectDone(_ run: DashboardRun, exit: Int32, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let last = try StatsLines.read(run.folder.file("stats.jsonl")).last
        #expect(last?.event == "done" && last?.int("exit") == Int(exit), "last line: \(last?.text ?? "none")",
                sourceLocation: sourceLocation)
    }
}

extension DashboardRun {
    /// The pid of nbdtop under the pane's shell, while it runs.
    var nbdtopPid: pid_t? {
        let binary = try? CommandRunner.nbdtopBinary()
        return terminal.paneDescendants().first { binary != nil && $0.commandLine.hasPrefix(binary!) }?.pid
    }
}
