/// Where each part of the dashboard goes for a terminal size.
///
/// From the top: header (`headerRows`), connection table, throughput chart, event pane (a
/// title line and 2 to 9 lines), footer (1 row). The table gets the rows it needs first;
/// the chart takes what is left and is left out when that is less than
/// `ThroughputChart.minimumRows`, so a small terminal loses the chart before any
/// connection row. Below `minimumSize` there is no layout and the too-small screen is
/// shown instead.
public struct DashboardLayout: Sendable, Equatable {
    /// The smallest terminal the full dashboard fits: 60 columns by 16 rows.
    public static let minimumSize = TerminalSize(columns: 60, rows: 16)
    public static let headerRows = Header.lines.count

    public var header: Rect
    public var table: Rect
    /// Empty when there is no room for the chart.
    public var chart: Rect
    public var events: Rect
    public var footer: Rect

    /// The layout for `size` with a table of `tableLines` lines (titles included), or nil
    /// when `size` is below `minimumSize`. Without `tableLines` the table takes every row.
    public init?(size: TerminalSize, tableLines: Int = .max) {
        guard size.columns >= Self.minimumSize.columns, size.rows >= Self.minimumSize.rows else { return nil }
        let width = size.columns
        header = Rect(row: 0, column: 0, columns: width, rows: Self.headerRows)
        footer = Rect(row: size.rows - 1, column: 0, columns: width, rows: 1)
        let middle = size.rows - Self.headerRows - 1
        let eventRows = min(10, max(3, middle / 4))
        events = Rect(row: footer.row - eventRows, column: 0, columns: width, rows: eventRows)
        let below = events.row - Self.headerRows
        var chartRows = tableLines == .max ? 0 : below - max(0, tableLines)
        if chartRows < ThroughputChart.minimumRows { chartRows = 0 }
        table = Rect(row: Self.headerRows, column: 0, columns: width, rows: below - chartRows)
        chart = Rect(row: table.bottom, column: 0, columns: width, rows: chartRows)
    }

    /// Whether the full dashboard fits `size`.
    public static func fits(_ size: TerminalSize) -> Bool { DashboardLayout(size: size) != nil }
}
