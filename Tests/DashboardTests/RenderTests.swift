@testable import Telemetry
import Testing
@testable import Dashboard

@Suite("Rendering the dashboard into a cell grid")
struct RenderTests {
    let theme = Theme.default.mapped(to: .palette256)

    @Test("80×24 shows the whole dashboard: header, every connection, events, footer")
    func standardTerminal() {
        var state = Fixtures.state()
        state.log("lane 2 added", severity: .ok, at: .seconds(3))
        let grid = render(snapshot: Fixtures.snapshot(lanes: 4), state: state, theme: theme, size: TerminalSize(columns: 80, rows: 24))
        let text = grid.plainText
        #expect(grid.size == TerminalSize(columns: 80, rows: 24))
        #expect(grid.text(row: 0).contains("nbdtop"))
        #expect(grid.text(row: 0).contains("null:"))
        #expect(text.contains("25.0%"))
        #expect(text.contains("1.0 GiB / 4.0 GiB"))
        #expect(text.contains("now 100.0 MiB/s"))
        #expect(text.contains("avg 90.0 MiB/s"))
        #expect(text.contains("ETA 0:30"))
        #expect(text.contains("elapsed 1:15"))
        #expect(text.contains("lanes 4/16"))
        #expect(text.contains("zero 256.0 MiB"))
        #expect(text.contains("lane 2 added"))
        #expect(grid.text(row: 23).contains("? help"))
        #expect(grid.text(row: 23).contains("+ add"))
        #expect(rows(of: grid, lane: nil).count == 8)
    }

    @Test("200×50 shows every connection, the extra columns and a 60-cell sparkline")
    func wideTerminal() {
        let grid = render(snapshot: Fixtures.snapshot(lanes: 8), state: Fixtures.state(), theme: theme,
                          size: TerminalSize(columns: 200, rows: 50))
        #expect(rows(of: grid, lane: nil).count == 16)
        let titles = grid.text(row: DashboardLayout.headerRows)
        for title in ["id", "state", "rate", "in flight", "p50", "p99", "oldest", "stalls", "slow", "err", "bytes", "held", "retry"] {
            #expect(titles.contains(title), "missing column \(title)")
        }
        #expect(TablePlan(width: 200).historyWidth == 60)
        #expect(grid.plainText.contains("source: server advertises multi-conn"))
    }

    @Test("source connections are grouped before destination connections, one row each")
    func groupedBySide() {
        let grid = render(snapshot: Fixtures.snapshot(lanes: 3), state: Fixtures.state(), theme: theme,
                          size: TerminalSize(columns: 100, rows: 30))
        let sourceHeading = grid.find(" source")!.row
        let destinationHeading = grid.find(" destination")!.row
        #expect(sourceHeading < destinationHeading)
        let connectionRows = rows(of: grid, lane: nil)
        #expect(connectionRows.count == 6)
        #expect(connectionRows.prefix(3).allSatisfy { $0 > sourceHeading && $0 < destinationHeading })
        #expect(connectionRows.suffix(3).allSatisfy { $0 > destinationHeading })
        for lane in 1...3 { #expect(rows(of: grid, lane: lane).count == 2) }
    }

    @Test("below the minimum size the too-small screen names the size needed", arguments: [
        TerminalSize(columns: 59, rows: 24), TerminalSize(columns: 80, rows: 15), TerminalSize(columns: 40, rows: 10),
    ])
    func tooSmall(size: TerminalSize) {
        let grid = render(snapshot: Fixtures.snapshot(), state: Fixtures.state(), theme: theme, size: size)
        let text = grid.plainText
        #expect(text.contains("terminal too small"))
        #expect(text.contains("need 60×16"))
        #expect(text.contains("have \(size.columns)×\(size.rows)"))
        #expect(!text.contains("nbdtop"))
    }

    @Test("the minimum size itself gets the dashboard")
    func minimumSize() {
        let grid = render(snapshot: Fixtures.snapshot(lanes: 2), state: Fixtures.state(), theme: theme, size: DashboardLayout.minimumSize)
        #expect(!grid.plainText.contains("too small"))
        #expect(rows(of: grid, lane: nil).count == 4)
        #expect(grid.text(row: 15).contains("? help"))
    }

    @Test("a tiny terminal still gets the message without crashing", arguments: [(1, 1), (0, 0), (12, 2), (5, 30)])
    func tiny(columns: Int, rows: Int) {
        let grid = render(snapshot: Fixtures.snapshot(), state: Fixtures.state(), theme: theme, size: (columns, rows))
        #expect(grid.size == TerminalSize(columns: columns, rows: rows))
    }

    @Test("the selected row is highlighted and marked")
    func selection() {
        var state = Fixtures.state()
        state.selected = ConnectionID(laneID: 2, side: .destination)
        let grid = render(snapshot: Fixtures.snapshot(lanes: 2), state: state, theme: theme, size: TerminalSize(columns: 80, rows: 24))
        let selectedRow = rows(of: grid, lane: 2).last!
        #expect(grid.text(row: selectedRow).hasPrefix(">"))
        #expect(grid[selectedRow, 10].background == theme[.selected].background)
        let otherRow = rows(of: grid, lane: 1).first!
        #expect(!grid.text(row: otherRow).hasPrefix(">"))
        #expect(grid[otherRow, 10].background != theme[.selected].background)
    }

    @Test("PAUSED and FROZEN badges appear in the title bar")
    func badges() {
        var state = Fixtures.state()
        let live = render(snapshot: Fixtures.snapshot(), state: state, theme: theme, size: (80, 24))
        #expect(!live.text(row: 0).contains("PAUSED"))
        #expect(!live.text(row: 0).contains("FROZEN"))
        state.frozenSnapshot = Fixtures.snapshot(paused: true)
        let frozen = render(snapshot: Fixtures.snapshot(), state: state, theme: theme, size: (80, 24))
        #expect(frozen.text(row: 0).contains("PAUSED"))
        #expect(frozen.text(row: 0).contains("FROZEN"))
    }

    @Test("a long source name is shortened in the middle, keeping both ends")
    func longNames() {
        var state = Fixtures.state()
        state.sourceName = "nbd+unix:///export?socket=/very/long/path/to/some/deeply/nested/directory/server.sock"
        let grid = render(snapshot: Fixtures.snapshot(), state: state, theme: theme, size: (80, 24))
        let title = grid.text(row: 0)
        #expect(title.contains("nbd+unix"))
        #expect(title.contains("…"))
        #expect(title.contains("→ null:"))
    }

    @Test("more connections than rows: the table scrolls to keep the selection visible")
    func scrolling() {
        var state = Fixtures.state()
        state.selected = ConnectionID(laneID: 12, side: .destination)
        let grid = render(snapshot: Fixtures.snapshot(lanes: 12), state: state, theme: theme, size: (80, 24))
        #expect(rows(of: grid, lane: 12).contains { grid.text(row: $0).hasPrefix(">") })
        #expect(grid.plainText.contains("more above"))
    }

    @Test("a snapshot without connections and without a known size still renders")
    func emptySnapshot() {
        var snapshot = Fixtures.snapshot()
        snapshot.connections = []
        snapshot.bytesTotal = nil
        snapshot.eta = nil
        let text = render(snapshot: snapshot, state: Fixtures.state(), theme: theme, size: (80, 24)).plainText
        #expect(text.contains("no connections yet"))
        #expect(text.contains("size not known yet"))
        #expect(text.contains("ETA -"))
    }

    /// Rows of the table that show a connection (of one lane, or of any when nil).
    func rows(of grid: CellGrid, lane: Int?) -> [Int] {
        (DashboardLayout.headerRows + 1..<grid.rows).filter { row in
            let text = grid.text(row: row)
            guard text.count > 12 else { return false }
            let id = text.prefix(4).dropFirst().trimmingSpaces()
            let state = String(text.dropFirst(5).prefix(6)).trimmingSpaces()
            guard let number = Int(id), ["active", "conn", "drain", "closed", "failed"].contains(state) else { return false }
            return lane == nil || lane == number
        }
    }
}

extension StringProtocol {
    func trimmingSpaces() -> String {
        var text = String(self)
        while text.first == " " { text.removeFirst() }
        while text.last == " " { text.removeLast() }
        return text
    }
}

@Suite("Summary after the dashboard")
struct SummaryTests {
    @Test("totals, average rate and one line per connection with stall figures")
    func summary() {
        let lines = SummaryReport.lines(Fixtures.snapshot(lanes: 2, stalledLane: 1))
        #expect(lines[0].hasPrefix("copied 1.0 GiB of 4.0 GiB in 1:15 (90.0 MiB/s average)"))
        #expect(lines[1].contains("stalls"))
        #expect(lines.count == 2 + 4)
        #expect(lines[2].contains("src") && lines[2].contains("1.25s"))
        #expect(lines[4].contains("dst"))
    }

    @Test("the first line says what became of the final flush, when it is known", arguments: [
        (CopyOutcome.Flush.acknowledged, "; flushed"), (.unsupported, "; not flushed: the destination cannot flush"),
        (.failed, "; the flush failed"),
    ])
    func flush(_ flush: CopyOutcome.Flush, ending: String) {
        let snapshot = Fixtures.snapshot(lanes: 2, stalledLane: 1)
        #expect(SummaryReport.lines(snapshot, flush: flush)[0].hasSuffix(ending))
        #expect(SummaryReport.lines(snapshot)[0].hasSuffix("(at most \(snapshot.maximumLanes))"))
    }
}
