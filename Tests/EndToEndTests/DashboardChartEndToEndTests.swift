import Foundation
import NBDTestSupport
import Testing

/// The chart, the bottleneck line, rows per lane and sorting, in a real 120×40 terminal
/// against an nbdkit capped at 10 MB/s per connection, copying to `null:`.
@Suite(.serialized, .timeLimit(.minutes(2))) struct DashboardChartEndToEndTests {
    static func cappedSource() throws -> ServerProcess {
        try ServerProcess.nbdkit(["pattern", "8G", "connection-rate=80M", "burstiness=0.1"],
                                 filters: ["noextents", "rate"], options: ["-r"])
    }

    /// One lane of a capped source: the bottleneck line names the source (more lanes
    /// help); the chart is below the table, and `+` puts a marker on it.
    @Test func bottleneckNamesTheSourceAndTheChartMarksAnAddedLane() throws {
        let source = try Self.cappedSource()
        defer { source.stop() }
        // Requests of a fixed size: the tuner would otherwise change what the source is seen doing.
        let run = try DashboardRun { _ in ["copy", "-C", "1", "--request-size", "256K", source.uri, "null:"] }
        defer { run.stop() }
        let terminal = run.terminal

        let verdict = try terminal.waitForText("bottleneck: source", timeout: .seconds(45))
        let line = verdict.split(separator: "\n").first { $0.contains("bottleneck:") }.map(String.init) ?? ""
        // The evidence: the window always full at -R, or the source stalling.
        #expect((line.contains("-R 64") || line.contains("source stalls")) && line.contains("more lanes help"), "\(line)")

        let screen = try terminal.waitForText("throughput, whole transfer")
        let lines = screen.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let chartRow = try #require(lines.firstIndex { $0.contains("throughput, whole transfer") })
        let rowLines = lines.indices.filter { DashboardScreen.row(lines[$0]) != nil }
        #expect(!rowLines.isEmpty && rowLines.allSatisfy { $0 < chartRow }, "the chart is below the table:\n\(screen)")
        // Lane 1's own start is the first marker.
        #expect(Self.markers(screen) == 1, "one marker before a lane is added:\n\(screen)")

        try terminal.type("+")
        try terminal.waitForText("lanes 2/")
        // Both markers may share a column at first; as the transfer goes on they part.
        try terminal.waitForScreen("a second + marker on the chart") { Self.markers($0) == 2 }

        try terminal.type("q")
        try terminal.waitForText("Stop the copy and quit?")
        try terminal.type("y")
        try terminal.waitForExit()
        #expect(run.exitStatus == 130, "\(run.failureContext)")
    }

    /// Three lanes into `null:`: one row per lane, no destination block; `I` inverts the
    /// order (lane 3 first), F6 sorts by the next column, F2 saves that to nbdtop.conf,
    /// and a mouse click on the frozen display selects a row.
    @Test func nullDestinationShowsOneRowPerLaneAndSortingReordersThem() throws {
        let source = try Self.cappedSource()
        defer { source.stop() }
        let config = try TemporaryDirectory(prefix: "nbdtop-config")
        defer { config.remove() }
        let run = try DashboardRun(environment: ["XDG_CONFIG_HOME": config.path]) { _ in ["copy", "-C", "3", source.uri, "null:"] }
        defer { run.stop() }
        let terminal = run.terminal

        let screen = try terminal.waitForScreen("three lane rows") { DashboardScreen($0).sourceRows.count == 3 }
        #expect(DashboardScreen(screen).destinationRows.isEmpty, "no destination block:\n\(screen)")
        #expect(!screen.contains(" destination "), "\(screen)")
        #expect(screen.contains("write"), "the write latency column:\n\(screen)")
        #expect(DashboardScreen(screen).sourceRows.map(\.lane) == [1, 2, 3])

        try terminal.type("I")
        try terminal.waitForScreen("lanes in reverse order") { DashboardScreen($0).sourceRows.map(\.lane) == [3, 2, 1] }
        try terminal.sendKeys("F6")
        try terminal.waitForText("sorted by rate")

        // F2 writes the choices, the sort among them, to nbdtop.conf.
        try terminal.sendKeys("F2")
        try terminal.waitForText("settings saved to")
        let saved = try String(contentsOfFile: config.file("nbdtop/nbdtop.conf"), encoding: .utf8)
        #expect(saved.contains("sort = rate") && saved.contains("sort_order = descending"), "\(saved)")

        // A press of the first button on lane 2's row, as xterm reports it (SGR mouse mode).
        // Rows sorted by rate change places between frames; frozen, the row read from the
        // capture is still lane 2's when the click arrives.
        try terminal.type(" ")
        try terminal.waitForText("FROZEN")
        try Self.click(terminal, onLane: 2)

        try terminal.type("q")
        try terminal.waitForText("Stop the copy and quit?")
        try terminal.type("y")
        try terminal.waitForExit()
        #expect(run.exitStatus == 130, "\(run.failureContext)")
        let summary = try terminal.capture(history: true, joined: true)
        #expect(summary.contains("write"), "the summary has one line per lane with the write latency:\n\(summary)")
    }

    /// Clicks on `lane`'s row, read from a fresh capture, until the row shows selected
    /// (`>`). Up to three clicks: on a loaded machine a capture can catch a frame half
    /// drawn (the header's FROZEN with the rows of the frame before it, where rows of equal
    /// rate may trade places), or the click's bytes can reach the program further apart
    /// than ncurses' 25 ms escape delay and read as keys. A click on the row it selects
    /// again changes nothing, so one more is harmless; a click never handled fails.
    static func click(_ terminal: TmuxSession, onLane lane: Int) throws {
        let what = "lane \(lane) selected by a click"
        func selected(_ screen: String) -> Bool {
            screen.split(separator: "\n").contains { $0.hasPrefix(">") && DashboardScreen.row(String($0))?.lane == lane }
        }
        for attempt in 1...3 {
            let screen = try terminal.capture()
            let lines = screen.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            let row = try #require(lines.firstIndex { DashboardScreen.row($0)?.lane == lane }, "\(screen)")
            try click(terminal, row: row, column: 30)
            if attempt == 3 { break }
            if (try? terminal.waitForScreen(timeout: .seconds(5), what, selected)) != nil { return }
        }
        try terminal.waitForScreen(what, selected)
    }

    /// Sends a press and release of the first mouse button at a screen cell (from 0), in
    /// the SGR encoding the terminal announces (`kmous=\E[<`).
    static func click(_ terminal: TmuxSession, row: Int, column: Int) throws {
        for final in ["M", "m"] {
            let sequence = "\u{1b}[<0;\(column + 1);\(row + 1)" + final
            try terminal.tmux(["send-keys", "-t", terminal.name, "-H"] + sequence.utf8.map { String($0, radix: 16) })
        }
    }

    /// `+` markers on the chart.
    static func markers(_ screen: String) -> Int { markerRow(screen).filter { $0 == "+" }.count }

    /// The chart's marker row: the line just above the time axis (`└───`).
    static func markerRow(_ screen: String) -> String {
        let lines = screen.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard let axis = lines.firstIndex(where: { $0.contains("└─") }), axis > 0 else { return "" }
        return lines[axis - 1]
    }
}
