import Foundation
import NBDTestSupport
import Testing

/// The proxy's dashboard in a real terminal (tmux, 120×40): rows for nbdcopy's four
/// connections, the coverage bar filling as it reads, only the proxy's keys.
@Suite(.serialized, .timeLimit(.minutes(2))) struct ProxyDashboardTests {
    /// The `export read N%` figure on the screen, if shown.
    static func readPercent(_ screen: String) -> Int? {
        guard let range = screen.range(of: "export read ") else { return nil }
        return Int(screen[range.upperBound...].prefix { $0.isNumber })
    }

    @Test func nbdcopysFourConnectionsAndTheCoverageBar() throws {
        // 10 MB/s per connection: 256 MiB take about 6 s over four.
        let source = try ServerProcess.nbdkit(["pattern", "256M", "connection-rate=80M", "burstiness=0.1"],
                                              filters: ["noextents", "rate"], options: ["-r"])
        defer { source.stop() }
        let run = try DashboardRun { folder in
            ["proxy", "--stats-json", folder.file("stats.jsonl"), folder.file("p.sock"), source.uri]
        }
        defer { run.stop() }
        let terminal = run.terminal
        try terminal.waitForText("clients now/seen")
        let copy = try BackgroundCommand(["nbdcopy", "-C", "4", "-T", "4", "nbd+unix:///?socket=\(run.folder.file("p.sock"))", "null:"])
        defer { copy.stop() }
        let busy = try terminal.waitForScreen("four clients and a part-filled coverage bar") { screen in
            screen.contains("lanes 4/4") && (Self.readPercent(screen).map { $0 > 0 && $0 < 100 } ?? false)
        }
        // A row per connection, each naming its client.
        for id in 1...4 {
            #expect(busy.split(separator: "\n").contains { $0.hasPrefix(String(format: "%4d nbdcopy [", id)) }, "row \(id):\n\(busy)")
        }
        #expect(busy.contains(" clients  4 open of 4"))
        // Lane keys are not the proxy's: + is not taken, and the footer does not offer it.
        #expect(!busy.contains("+ add"))
        try terminal.type("+")
        #expect(copy.wait(timeout: .seconds(60)) == 0, "\(copy.stderr)")
        // nbdcopy has exited, but the proxy may draw 100% a refresh before it has seen the
        // clients' sockets close: wait for both rather than take the first screen at 100%.
        let full = try terminal.waitForScreen("the whole export read and the clients gone") { screen in
            Self.readPercent(screen) == 100 && screen.contains("left: client disconnected")
        }
        #expect(full.contains("100.0%"))
        try terminal.type("q")
        try terminal.type("y")
        _ = try terminal.waitForExit()
        #expect(run.exitStatus == 0, "\(run.failureContext)")
        run.expectTerminalRestored()
        let log = try StatsLog(try String(contentsOfFile: run.folder.file("stats.jsonl"), encoding: .utf8))
        #expect(log.events("client_connected").count == 4)
        #expect(log.done?.int("exit") == 0)
    }

    @Test func attachFollowsAProxyWithItsClientRows() throws {
        let source = try ServerProcess.nbdkit(["pattern", "256M", "connection-rate=80M", "burstiness=0.1"],
                                              filters: ["noextents", "rate"], options: ["-r"])
        defer { source.stop() }
        let proxy = try ProxyHarness(upstream: [source.uri])
        defer { proxy.stop() }
        let copy = try BackgroundCommand(["nbdcopy", "-C", "2", "-T", "2", proxy.uri, "null:"])
        defer { copy.stop() }
        let run = try DashboardRun { _ in ["attach", String(proxy.command.pid)] }
        defer { run.stop() }
        let screen = try run.terminal.waitForScreen("two nbdcopy rows") { screen in
            screen.components(separatedBy: "nbdcopy [").count - 1 >= 2 && screen.contains(" clients ")
        }
        #expect(screen.contains("q detach"))
        #expect(!screen.contains("+ add"))
        try run.terminal.type("q")
        _ = try run.terminal.waitForExit()
        #expect(run.exitStatus == 0, "\(run.failureContext)")
        #expect(proxy.command.exitStatus == nil, "detaching leaves the proxy running")
    }
}
