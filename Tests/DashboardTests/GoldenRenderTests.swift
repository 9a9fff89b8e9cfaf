@testable import Telemetry
import Testing
@testable import Dashboard

/// The main layouts, whole grid against golden files (text and attributes). Fixtures are
/// fixed values only: no clocks, no randomness.
@Suite("Whole-screen golden grids")
struct GoldenRenderTests {
    let theme = Theme.default.mapped(to: .palette256)

    /// A state that has seen 75 s of a copy: the rate climbs as lanes are added at 10 s,
    /// 30 s and 50 s, with a stall from 40 s to 44 s, and a few events.
    static func state(attached: Bool = false, destination: String = "nbd+unix:///?socket=/tmp/dst.sock") -> DashboardState {
        var state = DashboardState(sourceName: "nbd+unix:///?socket=/tmp/src.sock", destinationName: destination,
                                   requestsPerLane: 64, attached: attached)
        for tick in 0...300 {
            let elapsed = Duration.milliseconds(250 * tick)
            let lanes = 1 + (tick >= 40 ? 1 : 0) + (tick >= 120 ? 1 : 0) + (tick >= 200 ? 1 : 0)
            let wobble = Double((tick * 7) % 10) / 10
            let stalled = tick >= 160 && tick < 176
            state.throughput.observe(elapsed: elapsed, bytesPerSecond: (Double(lanes) * 25 + wobble * 5 - (stalled ? 20 : 0)) * 1_048_576,
                                     stalled: stalled)
        }
        for (second, lane) in [(10, 2), (30, 3), (50, 4)] {
            state.record(.laneAdded(laneID: lane), at: .seconds(second))
        }
        state.record(.stall(laneID: 2, side: .source, oldestAge: .milliseconds(900), held: 40), at: .seconds(41))
        return state
    }

    static func snapshot(lanes: Int = 4, stalledLane: Int? = nil, destinationIsNBD: Bool = true) -> CopySnapshot {
        var snapshot = Fixtures.snapshot(lanes: lanes, stalledLane: stalledLane)
        snapshot.destinationIsNBD = destinationIsNBD
        snapshot.bottleneck = Bottleneck(kind: .source, detail: "source stalls 12% of the time (in-order replies): more lanes help")
        return snapshot
    }

    func check(_ name: String, snapshot: CopySnapshot, state: DashboardState, columns: Int, rows: Int) {
        let grid = render(snapshot: snapshot, state: state, theme: theme, size: TerminalSize(columns: columns, rows: rows))
        let mismatch = GoldenGrid.mismatch(grid, name)
        #expect(mismatch == nil, "\(mismatch ?? "")")
    }

    @Test("80×24, a copy") func copy80x24() {
        check("copy-80x24", snapshot: Self.snapshot(lanes: 2), state: Self.state(), columns: 80, rows: 24)
    }

    @Test("120×40, a copy") func copy120x40() {
        check("copy-120x40", snapshot: Self.snapshot(), state: Self.state(), columns: 120, rows: 40)
    }

    @Test("200×50, a copy with eight lanes") func copy200x50() {
        check("copy-200x50", snapshot: Self.snapshot(lanes: 8), state: Self.state(), columns: 200, rows: 50)
    }

    @Test("120×40, attached") func attached120x40() {
        check("attach-120x40", snapshot: Self.snapshot(), state: Self.state(attached: true), columns: 120, rows: 40)
    }

    @Test("120×40, a stalled row, selected") func stalled120x40() {
        var state = Self.state()
        state.selected = ConnectionID(laneID: 2, side: .source)
        check("stalled-120x40", snapshot: Self.snapshot(stalledLane: 2), state: state, columns: 120, rows: 40)
    }

    @Test("120×40, a null destination: one row per lane") func null120x40() {
        check("null-120x40", snapshot: Self.snapshot(destinationIsNBD: false), state: Self.state(destination: "null:"),
              columns: 120, rows: 40)
    }

    @Test("200×50, a chart with every kind of marker") func chartMarkers() {
        var state = Self.state()
        state.record(.laneDropped(laneID: 4), at: .seconds(60))
        state.record(.laneFailed(laneID: 3, reason: "connection reset"), at: .seconds(65))
        state.record(.laneReconnected(laneID: 1, side: .source), at: .seconds(70))
        check("chart-markers-200x50", snapshot: Self.snapshot(lanes: 2), state: state, columns: 200, rows: 50)
    }

    @Test("the golden format sees attributes, not only text")
    func attributesCount() {
        var grid = CellGrid(size: TerminalSize(columns: 4, rows: 1))
        let plain = GoldenGrid.serialize(grid)
        grid.restyle(Rect(row: 0, column: 1, columns: 1, rows: 1)) { $0.adding(.bold) }
        #expect(GoldenGrid.serialize(grid) != plain)
        #expect(GoldenGrid.serialize(grid).contains("attrs=bold"))
    }
}
