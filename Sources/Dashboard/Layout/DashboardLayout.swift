/// Where each part of the dashboard goes for a terminal size.
///
/// From the top: header (4 rows), connection table (all the rest), event pane (a title
/// line and 2 to 9 lines), footer (1 row). Below `minimumSize` there is no layout and the
/// too-small screen is shown instead. 80×24 shows everything: header, table with 14
/// lines, 3 event lines, footer.
public struct DashboardLayout: Sendable, Equatable {
    /// The smallest terminal the full dashboard fits: 60 columns by 16 rows.
    public static let minimumSize = TerminalSize(columns: 60, rows: 16)
    public static let headerRows = 4

    public var header: Rect
    public var table: Rect
    public var events: Rect
    public var footer: Rect

    /// The layout for `size`, or nil when it is below `minimumSize`.
    public init?(size: TerminalSize) {
        guard size.columns >= Self.minimumSize.columns, size.rows >= Self.minimumSize.rows else { return nil }
        let width = size.columns
        header = Rect(row: 0, column: 0, columns: width, rows: Self.headerRows)
        footer = Rect(row: size.rows - 1, column: 0, columns: width, rows: 1)
        let middle = size.rows - Self.headerRows - 1
        let eventRows = min(10, max(3, middle / 4))
        events = Rect(row: footer.row - eventRows, column: 0, columns: width, rows: eventRows)
        table = Rect(row: Self.headerRows, column: 0, columns: width, rows: events.row - Self.headerRows)
    }

    /// Whether the full dashboard fits `size`.
    public static func fits(_ size: TerminalSize) -> Bool { DashboardLayout(size: size) != nil }
}
