@testable import Telemetry
import Testing
@testable import Dashboard

@Suite("Stall marker and sparkline")
struct StallAndSparklineTests {
    @Test("a stalled connection shows the marker glyph in bold reverse, in colour and in monochrome",
          arguments: [ColorDepth.palette256, .sixteen, .eight, .monochrome])
    func stallMarker(depth: ColorDepth) throws {
        let theme = Theme.default.mapped(to: depth)
        let grid = render(snapshot: Fixtures.snapshot(lanes: 2, stalledLane: 2), state: Fixtures.state(), theme: theme, size: (80, 24))
        let stalledRow = try #require(connectionRow(in: grid, lane: 2, side: "source"))
        let markerColumn = try #require(column(of: "⚠", in: grid, row: stalledRow))
        let marker = grid[stalledRow, markerColumn]
        #expect(marker.attributes.contains(.reverse))
        #expect(marker.attributes.contains(.bold))
        // Rows that are not stalled have no marker.
        let calmRow = try #require(connectionRow(in: grid, lane: 1, side: "source"))
        #expect(column(of: "⚠", in: grid, row: calmRow) == nil)
        #expect(grid.text(row: stalledRow).contains("3  1.25s"))
    }

    @Test("without UTF-8 the marker is '!', still bold reverse")
    func asciiMarker() throws {
        var state = Fixtures.state()
        state.glyphs = .ascii
        let grid = render(snapshot: Fixtures.snapshot(lanes: 1, stalledLane: 1), state: state, theme: .default, size: (80, 24))
        let row = try #require(connectionRow(in: grid, lane: 1, side: "source"))
        let markerColumn = try #require(column(of: "!", in: grid, row: row))
        #expect(grid[row, markerColumn].attributes.isSuperset(of: [.bold, .reverse]))
        #expect(!grid.plainText.contains("█"))
    }

    @Test("a selected stalled row keeps a distinct marker")
    func selectedStall() throws {
        var state = Fixtures.state()
        state.selected = ConnectionID(laneID: 1, side: .source)
        let grid = render(snapshot: Fixtures.snapshot(lanes: 1, stalledLane: 1), state: state, theme: .monochrome, size: (80, 24))
        let row = try #require(connectionRow(in: grid, lane: 1, side: "source"))
        let markerColumn = try #require(column(of: "⚠", in: grid, row: row))
        #expect(grid[row, markerColumn].attributes.contains(.bold))
        #expect(grid[row, markerColumn].attributes != grid[row, 10].attributes)
    }

    @Test("sparkline levels: the maximum is a full block, zero is blank, small is the lowest bar")
    func levels() {
        #expect(Sparkline.levels([0, 1, 50, 100], maximum: 100) == [0, 1, 4, 8])
        #expect(Sparkline.levels([200], maximum: 100) == [8])
        #expect(Sparkline.levels([5, 5], maximum: 0) == [0, 0])
        #expect(Sparkline.levels([-3, .nan], maximum: 10) == [0, 0])
    }

    @Test("sparkline text is right-aligned, newest at the right, scaled to the maximum")
    func text() {
        #expect(Sparkline.text([0, 50, 100], width: 3, maximum: 100) == " ▄█")
        #expect(Sparkline.text([100], width: 4, maximum: 100) == "   █")
        #expect(Sparkline.text([10, 20, 30, 40], width: 2, maximum: 40) == "▆█")
        #expect(Sparkline.text([10, 0], width: 2, maximum: 10, glyphs: .ascii) == "# ")
    }

    @Test("every row's sparkline shares the scale of the largest visible rate")
    func sharedScale() throws {
        var snapshot = Fixtures.snapshot(lanes: 2)
        for index in snapshot.connections.indices {
            snapshot.connections[index].rateHistory = Array(repeating: snapshot.connections[index].laneID == 1 ? 100 : 50, count: 60)
        }
        let grid = render(snapshot: snapshot, state: Fixtures.state(), theme: .default, size: (120, 30))
        let fast = try #require(connectionRow(in: grid, lane: 1, side: "source"))
        let slow = try #require(connectionRow(in: grid, lane: 2, side: "source"))
        #expect(grid.text(row: fast).contains("████████"))
        #expect(grid.text(row: slow).contains("▄▄▄▄▄▄▄▄"))
        #expect(!grid.text(row: slow).contains("██"))
    }

    @Test("failed and closed connections say so instead of a sparkline")
    func failedConnection() throws {
        var snapshot = Fixtures.snapshot(lanes: 2)
        snapshot.connections[0].state = .failed
        snapshot.connections[0].failureReason = "connection reset by peer"
        snapshot.connections[2].state = .closed
        let grid = render(snapshot: snapshot, state: Fixtures.state(), theme: .default, size: (120, 30))
        #expect(grid.plainText.contains("failed: connection reset"))
        #expect(grid.plainText.contains("closed"))
    }

    /// The row of a connection: the nth row after the side's heading whose id is `lane`.
    func connectionRow(in grid: CellGrid, lane: Int, side: String) -> Int? {
        guard let heading = grid.find(side == "source" ? " source" : " destination") else { return nil }
        return (heading.row + 1..<grid.rows).first { row in
            Int(grid.text(row: row).prefix(4).dropFirst().trimmingSpaces()) == lane
        }
    }

    func column(of glyph: Character, in grid: CellGrid, row: Int) -> Int? {
        (0..<grid.columns).first { grid[row, $0].character == glyph }
    }
}
