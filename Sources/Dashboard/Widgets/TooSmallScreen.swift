/// What a terminal below the minimum size shows: the size needed and the size it has.
struct TooSmallScreen {
    let size: TerminalSize
    let quitPending: Bool

    /// `terminal too small, need 60×16 (have 50×10)`.
    static func message(for size: TerminalSize) -> String {
        "terminal too small, need \(DashboardLayout.minimumSize) (have \(size))"
    }

    func draw(into grid: inout CellGrid, theme: Theme) {
        let lines: [(String, Style)] = [
            ("terminal too small", theme[.warning].adding(.bold)),
            ("need \(DashboardLayout.minimumSize), have \(size)", theme[.normal]),
            (quitPending ? "stop the copy and quit? y/n" : "enlarge it, or q to quit", quitPending ? theme[.warning].adding(.reverse) : theme[.dim]),
        ]
        let top = max(0, (size.rows - lines.count) / 2)
        for (index, (text, style)) in lines.enumerated() {
            // On a very narrow terminal the one-line form is cut rather than centred.
            let shown = DisplayWidth.of(text) <= size.columns ? text : TextFitting.truncate(text, to: size.columns)
            let column = max(0, (size.columns - DisplayWidth.of(shown)) / 2)
            grid.write(shown, at: Position(row: top + index, column: column), style: style)
        }
        if size.rows < lines.count, size.rows > 0 {
            grid.fill(Rect(row: 0, column: 0, columns: size.columns, rows: size.rows), style: theme[.normal])
            grid.write(Self.message(for: size), at: Position(row: 0, column: 0), style: theme[.warning])
        }
    }
}
