import Testing
@testable import Dashboard

@Suite("Cell grid")
struct CellGridTests {
    @Test("writing clips to the grid and to a rectangle")
    func clipping() {
        var grid = CellGrid(size: TerminalSize(columns: 10, rows: 2))
        grid.write("hello world", at: Position(row: 0, column: 3), style: .plain)
        #expect(grid.text(row: 0) == "   hello w")
        grid.write("abcdef", at: Position(row: 1, column: -2), style: .plain, clip: Rect(row: 1, column: 0, columns: 3, rows: 1))
        #expect(grid.text(row: 1) == "cde       ")
        grid.write("zzz", at: Position(row: 5, column: 0), style: .plain)
        #expect(grid.plainText == "   hello w\ncde")
    }

    @Test("double-width characters take two cells and never straddle an edge")
    func wideCharacters() {
        var grid = CellGrid(size: TerminalSize(columns: 5, rows: 1))
        let end = grid.write("日本語", at: Position(row: 0, column: 0), style: .plain)
        #expect(end == 5)
        #expect(grid.text(row: 0) == "日本 ")
        #expect(grid[0, 1].isContinuation)
        #expect(!grid[0, 4].isContinuation)
    }

    @Test("overwriting half of a wide character blanks the other half")
    func overwriteHalf() {
        var grid = CellGrid(size: TerminalSize(columns: 4, rows: 1))
        grid.write("日本", at: Position(row: 0, column: 0), style: .plain)
        grid.write("x", at: Position(row: 0, column: 1), style: .plain)
        #expect(grid.text(row: 0) == " x本")
        grid.write("y", at: Position(row: 0, column: 2), style: .plain)
        #expect(grid.text(row: 0) == " xy ")
        #expect(!grid[0, 3].isContinuation)
    }

    @Test("control characters show as ? and styles are kept per cell")
    func controlAndStyle() {
        var grid = CellGrid(size: TerminalSize(columns: 6, rows: 1))
        grid.write("a\tb\u{1B}", at: Position(row: 0, column: 0), style: Style(attributes: .bold))
        #expect(grid.text(row: 0) == "a?b?  ")
        #expect(grid[0, 0].attributes == .bold)
        #expect(grid[0, 5].attributes == [])
        #expect(grid.find("b?") == Position(row: 0, column: 2))
    }

    @Test("display widths", arguments: [("a", 1), ("█", 1), ("⚠", 1), ("日", 2), ("é", 1), ("🙂", 2), ("\u{7}", 0)])
    func widths(text: String, width: Int) {
        #expect(DisplayWidth.of(Character(text)) == width)
    }

    @Test("text fitting cuts at the end or in the middle and pads")
    func fitting() {
        #expect(TextFitting.truncate("abcdefgh", to: 5) == "abcd…")
        #expect(TextFitting.truncateMiddle("/very/long/path/file.sock", to: 12) == "/ve…ile.sock")
        #expect(TextFitting.pad("42", to: 5, alignRight: true) == "   42")
        #expect(TextFitting.pad("toolong", to: 4) == "too…")
    }

    @Test("figures for people")
    func formats() {
        #expect(Format.bytes(UInt64(0)) == "0 B")
        #expect(Format.bytes(UInt64(1536)) == "1.5 KiB")
        #expect(Format.compactRate(50 * 1_048_576) == "50.0MiB/s")
        #expect(Format.shortDuration(.microseconds(120)) == "0.12ms")
        #expect(Format.shortDuration(.milliseconds(12)) == "12.0ms")
        #expect(Format.shortDuration(.milliseconds(900)) == "900ms")
        #expect(Format.shortDuration(.milliseconds(1250)) == "1.25s")
        #expect(Format.shortDuration(.seconds(125)) == "125s")
        #expect(Format.shortDuration(.seconds(4000)) == "66m")
        #expect(Format.clock(.seconds(3723)) == "1:02:03")
        #expect(Format.percent(0.25) == "25.0%")
    }

    @Test("layout: 80×24 fits with a 14-line table; the minimum is 60×16")
    func layout() throws {
        let layout = try #require(DashboardLayout(size: TerminalSize(columns: 80, rows: 24)))
        #expect(layout.header.rows == 5)
        #expect(layout.table.rows == 14)
        #expect(layout.chart.isEmpty, "without the table's size the table takes every row")
        #expect(layout.events.rows == 4)
        #expect(layout.footer.row == 23)
        #expect(DashboardLayout(size: TerminalSize(columns: 59, rows: 30)) == nil)
        #expect(DashboardLayout(size: TerminalSize(columns: 60, rows: 16)) != nil)
    }

    @Test("table columns: essentials at 60, everything at 200")
    func plan() {
        let narrow = TablePlan(width: 60)
        #expect(!narrow.columns.contains(.oldest))
        #expect(narrow.historyWidth >= TablePlan.minimumHistory)
        let standard = TablePlan(width: 80)
        #expect(standard.columns == [.id, .state, .rate, .history, .inFlight, .p50, .p99, .oldest, .stall, .errors])
        #expect(TablePlan(width: 200).columns.contains(.retries))
    }
}
