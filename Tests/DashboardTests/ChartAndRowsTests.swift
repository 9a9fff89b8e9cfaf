@testable import Telemetry
import Testing
@testable import Dashboard

@Suite("Throughput chart, rows per lane, sorting and the bottleneck line")
struct ChartAndRowsTests {
    let theme = Theme.default.mapped(to: .palette256)

    func grid(_ snapshot: CopySnapshot, _ state: DashboardState, _ columns: Int, _ rows: Int) -> CellGrid {
        render(snapshot: snapshot, state: state, theme: theme, size: TerminalSize(columns: columns, rows: rows))
    }

    @Test("the chart sits below the table in the rows it does not need")
    func chartBelowTable() throws {
        let state = GoldenRenderTests.state()
        let grid = grid(GoldenRenderTests.snapshot(lanes: 2), state, 120, 40)
        let chart = try #require(grid.find("throughput, whole transfer"))
        let lastRow = try #require((0..<grid.rows).last { grid.text(row: $0).hasPrefix("   2 active") })
        #expect(chart.row > lastRow)
        #expect(chart.row < (try #require(grid.find(" events ")).row))
        #expect(grid.plainText.contains("lane added"))
    }

    @Test("a tall terminal grows the chart; a short one drops it before any connection row")
    func chartGrowsAndHides() {
        let snapshot = GoldenRenderTests.snapshot(lanes: 4)
        let tableLines = ConnectionTable(snapshot: snapshot, state: GoldenRenderTests.state()).linesNeeded
        let tall = DashboardLayout(size: TerminalSize(columns: 120, rows: 60), tableLines: tableLines)!
        let medium = DashboardLayout(size: TerminalSize(columns: 120, rows: 40), tableLines: tableLines)!
        #expect(tall.chart.rows > medium.chart.rows)
        #expect(medium.table.rows == tableLines)
        // 4 lanes need 11 table lines; at 80×24 only 14 rows are left, too few for a chart as well.
        let short = DashboardLayout(size: TerminalSize(columns: 80, rows: 24), tableLines: tableLines)!
        #expect(short.chart.isEmpty)
        #expect(short.table.rows >= tableLines)
        let grid = grid(snapshot, GoldenRenderTests.state(), 80, 24)
        #expect(grid.find("throughput, whole transfer") == nil)
        #expect(RenderTests().rows(of: grid, lane: nil).count == 8)
    }

    @Test("the history spans the whole transfer in bounded memory")
    func historyCompresses() {
        var history = ThroughputHistory()
        for tick in 0..<20_000 {
            history.observe(elapsed: .milliseconds(250 * tick), bytesPerSecond: tick < 10_000 ? 10 : 30, stalled: tick == 15_000)
        }
        #expect(history.buckets.count <= ThroughputHistory.capacity)
        let columns = history.columns(100)
        #expect(columns.count == 100)
        #expect(columns.first?.bytesPerSecond == 10 && columns.last?.bytesPerSecond == 30)
        #expect(columns.filter(\.stalled).count == 1)
        #expect(columns[74].stalled || columns[75].stalled)
    }

    @Test("lane events map to chart markers through one table")
    func markerTable() {
        #expect(ChartMarker(.laneAdded(laneID: 2), at: .zero)?.glyph == "+")
        #expect(ChartMarker(.laneDropped(laneID: 2), at: .zero)?.glyph == "-")
        #expect(ChartMarker(.laneFailed(laneID: 2, reason: "EIO"), at: .zero)?.glyph == "x")
        #expect(ChartMarker(.laneReconnected(laneID: 2, side: .source), at: .zero)?.glyph == "r")
        #expect(ChartMarker(.paused(true), at: .zero) == nil)
        #expect(ChartMarker(.stall(laneID: 1, side: .source, oldestAge: .seconds(1), held: 3), at: .zero) == nil)
        #expect(Set(ChartMarker.table.map(\.glyph)).count == ChartMarker.table.count)
        var state = Fixtures.state()
        state.record(.laneAdded(laneID: 2), at: .seconds(3))
        state.record(.paused(true), at: .seconds(4))
        #expect(state.markers == [ChartMarker(elapsed: .seconds(3), glyph: "+")])
    }

    @Test("a marker shows at its moment on the chart")
    func markerOnChart() throws {
        var state = DashboardState(sourceName: "a", destinationName: "b", requestsPerLane: 64)
        for second in 0...40 { state.throughput.observe(elapsed: .seconds(second), bytesPerSecond: 1_048_576, stalled: false) }
        state.record(.laneAdded(laneID: 2), at: .seconds(20))
        let grid = grid(Fixtures.snapshot(lanes: 1), state, 120, 40)
        let axis = try #require((0..<grid.rows).first { grid.text(row: $0).contains("└") })
        let markerRow = grid.text(row: axis - 1)
        #expect(markerRow.contains("+"))
        let plotStart = ThroughputChart.labelWidth + 1, width = 120 - plotStart - 1
        let column = try #require(Array(markerRow).firstIndex(of: "+"))
        #expect(abs((column - plotStart) - width / 2) <= 2, "a marker at 20 s of 41 is near the middle")
    }

    @Test("a null destination: one row per lane, with the destination's write latency")
    func rowPerLane() {
        var snapshot = Fixtures.snapshot(lanes: 3)
        snapshot.destinationIsNBD = false
        let grid = grid(snapshot, Fixtures.state(), 120, 40)
        #expect(RenderTests().rows(of: grid, lane: nil).count == 3)
        #expect(grid.find(" destination") == nil)
        #expect(grid.find(" lanes → null:") != nil)
        #expect(grid.text(row: DashboardLayout.headerRows).contains("write"))
        snapshot.destinationIsNBD = true
        #expect(RenderTests().rows(of: self.grid(snapshot, Fixtures.state(), 120, 40), lane: nil).count == 6)
    }

    @Test("the summary of a copy to null: one line per lane with the write latency")
    func summaryPerLane() {
        var snapshot = Fixtures.snapshot(lanes: 2)
        snapshot.destinationIsNBD = false
        let lines = SummaryReport.lines(snapshot)
        #expect(lines.count == 2 + 2)
        #expect(lines[1].contains("write"))
        #expect(!lines.contains { $0.contains(" dst ") })
    }

    @Test("F6 or o picks the sort column, I inverts it; the rows follow")
    func sorting() {
        var snapshot = Fixtures.snapshot(lanes: 3)
        for index in snapshot.connections.indices where snapshot.connections[index].side == .source {
            snapshot.connections[index].bytesPerSecond = Double(snapshot.connections[index].laneID) * 1_000_000
        }
        var state = Fixtures.state()
        func sourceOrder() -> [Int] { state.tableRows(in: snapshot).filter { $0.side == .source }.map(\.laneID) }
        #expect(sourceOrder() == [1, 2, 3])
        _ = state.handle(.function(6), latest: snapshot, copyRunning: true)
        #expect(state.sort == TableSort(column: .rate, descending: true))
        #expect(sourceOrder() == [3, 2, 1])
        _ = state.handle(.character("I"), latest: snapshot, copyRunning: true)
        #expect(sourceOrder() == [1, 2, 3])
        _ = state.handle(.character("o"), latest: snapshot, copyRunning: true)
        #expect(state.sort.column == .inflight)
        let grid = grid(snapshot, state, 120, 40)
        #expect(grid.text(row: DashboardLayout.headerRows).contains("in fligh▼"))
        #expect(state.eventLog.entries.last?.text == "sorted by inflight largest first")
    }

    @Test("the header names the bottleneck, or says it is measuring")
    func bottleneckLine() {
        var snapshot = Fixtures.snapshot()
        #expect(grid(snapshot, Fixtures.state(), 80, 24).text(row: 4).contains("bottleneck: measuring"))
        snapshot.bottleneck = Bottleneck(kind: .laneLimit, detail: "server does not advertise multi-conn: 1 lane")
        let line = grid(snapshot, Fixtures.state(), 120, 40).text(row: 4)
        #expect(line.contains("bottleneck: lane limit  server does not advertise multi-conn: 1 lane"))
    }

    @Test("the chart's scale is a round number of its unit")
    func scale() {
        #expect(ThroughputChart.scale(for: 37 * 1_048_576) == 40 * 1_048_576)
        #expect(ThroughputChart.scale(for: 105 * 1_048_576) == 150 * 1_048_576)
        #expect(ThroughputChart.scale(for: 100 * 1_048_576) == 100 * 1_048_576)
        #expect(ThroughputChart.scale(for: 1500) == 1.5 * 1024)
        #expect(ThroughputChart.scale(for: 0) > 0)
    }
}

@Suite("The mouse: rows, wheel and footer")
struct MouseTests {
    let size = TerminalSize(columns: 120, rows: 40)

    @Test("a press on a connection row selects it; elsewhere it selects nothing")
    func pressSelects() throws {
        let snapshot = Fixtures.snapshot(lanes: 3)
        var state = Fixtures.state()
        let grid = render(snapshot: snapshot, state: state, theme: .default, size: size)
        let row = try #require((0..<grid.rows).first { grid.text(row: $0).hasPrefix("   2 active") })
        #expect(state.handle(.mouse(.press(Position(row: row, column: 40))), latest: snapshot, copyRunning: true, size: size) == nil)
        #expect(state.selected == ConnectionID(laneID: 2, side: .source))
        _ = state.handle(.mouse(.press(Position(row: 0, column: 5))), latest: snapshot, copyRunning: true, size: size)
        #expect(state.selected == ConnectionID(laneID: 2, side: .source), "a press on the header changes nothing")
        let selectedGrid = render(snapshot: snapshot, state: state, theme: .default, size: size)
        #expect(selectedGrid.text(row: row).hasPrefix(">  2"))
    }

    @Test("the wheel moves the selection through the rows")
    func wheel() {
        let snapshot = Fixtures.snapshot(lanes: 3)
        var state = Fixtures.state()
        _ = state.handle(.mouse(.wheelDown(Position(row: 10, column: 10))), latest: snapshot, copyRunning: true, size: size)
        _ = state.handle(.mouse(.wheelDown(Position(row: 10, column: 10))), latest: snapshot, copyRunning: true, size: size)
        #expect(state.selected == ConnectionID(laneID: 2, side: .source))
        _ = state.handle(.mouse(.wheelUp(Position(row: 10, column: 10))), latest: snapshot, copyRunning: true, size: size)
        #expect(state.selected == ConnectionID(laneID: 1, side: .source))
    }

    @Test("a press on a footer item runs its key; between items nothing happens")
    func footer() throws {
        let snapshot = Fixtures.snapshot(lanes: 2)
        var state = Fixtures.state()
        let footer = render(snapshot: snapshot, state: state, theme: .default, size: size).text(row: 39)
        func press(_ word: String) throws -> DashboardCommand? {
            let column = try #require(footer.firstRange(of: word)).lowerBound.utf16Offset(in: footer)
            return state.handle(.mouse(.press(Position(row: 39, column: column))), latest: snapshot, copyRunning: true, size: size)
        }
        #expect(try press("+ add") == .addLane)
        #expect(try press("drop") == .dropLane(laneID: nil))
        #expect(try press("? help") == nil)
        #expect(state.helpVisible)
        state.helpVisible = false
        _ = try press("F6 sort")
        #expect(state.sort.column == .rate)
        #expect(Footer.action(atColumn: 0, width: 120) == nil, "the margin before the first item")
    }
}

@Suite("An attached dashboard's chart starts with the last minute")
struct ChartSeedTests {
    @Test("the first snapshot's per-second rates fill an empty history; later ones do not")
    func seeds() {
        var snapshot = Fixtures.snapshot(lanes: 2)
        snapshot.elapsed = .seconds(100)
        var state = Fixtures.state()
        state.observe(snapshot)
        let columns = state.throughput.columns(100)
        #expect(state.throughput.end == .seconds(100))
        #expect(columns.prefix(30).allSatisfy { $0.bytesPerSecond == 0 }, "nothing is known before the last minute")
        #expect(columns.suffix(30).contains { $0.bytesPerSecond > 0 })
        let before = state.throughput
        snapshot.elapsed = .seconds(101)
        state.throughput.seed(from: snapshot)
        #expect(state.throughput == before)
    }
}
