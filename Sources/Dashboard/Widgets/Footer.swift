/// The bottom line: the keys from the key table, the refresh interval and theme at the
/// right; or the quit question while it is open.
struct Footer {
    let state: DashboardState
    let themeName: String

    func draw(into grid: inout CellGrid, in line: Rect, theme: Theme) {
        guard line.rows > 0 else { return }
        if state.quitConfirmationPending {
            let style = theme[.warning].adding([.bold, .reverse])
            grid.fill(line, style: style)
            let question = state.attached ? "Stop the copy?" : "Stop the copy and quit?"
            grid.write(" \(question) y = yes, any other key = no ", at: Position(row: line.row, column: line.column),
                       style: style, clip: line)
            return
        }
        let style = theme[.footer]
        grid.fill(line, style: style)
        let right = " \(Format.shortDuration(state.refreshInterval)) \(themeName) "
        let entries = Self.entries(width: line.columns, attached: state.attached, proxy: state.proxy)
        let start = entries.reduce(0) { $0 + DisplayWidth.of($1.text) } < line.columns ? 1 : 0
        let end = grid.write(entries.map { TextRun($0.text, $0.isKey ? theme[.footerKey] : style) },
                             at: Position(row: line.row, column: line.column + start), clip: line)
        if line.right - end >= DisplayWidth.of(right) + 2 {
            grid.write(right, at: Position(row: line.row, column: line.right - DisplayWidth.of(right)), style: theme[.dim].over(style), clip: line)
        }
    }

    /// Footer entries left out first when the line is too narrow, in order; quit and
    /// help always stay.
    static let dropOrder: [KeyAction] = [.slowerRefresh, .sortColumn, .stopCopy, .cycleTheme, .freezeDisplay, .togglePause, .selectUp, .dropLane, .addLane]

    /// The footer's runs for `width` columns: `+ add  - drop  ↑↓ select …`, dropping
    /// entries in `dropOrder` when too narrow; quit and help always stay.
    static func entries(width: Int, attached: Bool = false, proxy: Bool = false) -> [(text: String, isKey: Bool)] {
        let chosen = bindings(width: width, attached: attached, proxy: proxy)
        var runs: [(String, Bool)] = []
        for (index, entry) in chosen.enumerated() {
            runs.append((entry.footerKeys, true))
            runs.append((" " + entry.footerLabel + (index == chosen.count - 1 ? "" : "  "), false))
        }
        return runs
    }

    /// The bindings the footer shows at `width`, left to right.
    private static func bindings(width: Int, attached: Bool, proxy: Bool) -> [KeyBinding] {
        var chosen = KeyTable.bindings(attached: attached, proxy: proxy).filter { !$0.footerKeys.isEmpty }
        func length(_ entries: [KeyBinding]) -> Int {
            entries.reduce(0) { $0 + DisplayWidth.of($1.footerKeys) + 1 + DisplayWidth.of($1.footerLabel) } + 2 * max(0, entries.count - 1)
        }
        for action in dropOrder where length(chosen) > width {
            chosen.removeAll { $0.action == action }
        }
        return chosen
    }

    /// The action of the footer item drawn at `column` (its keys and its word), if any:
    /// what a mouse press there runs.
    static func action(atColumn column: Int, width: Int, attached: Bool = false, proxy: Bool = false) -> KeyAction? {
        let items = entries(width: width, attached: attached, proxy: proxy)
        var start = items.reduce(0) { $0 + DisplayWidth.of($1.text) } < width ? 1 : 0
        for (binding, pair) in zip(bindings(width: width, attached: attached, proxy: proxy), stride(from: 0, to: items.count, by: 2)) {
            let keys = DisplayWidth.of(items[pair].text)
            let label = DisplayWidth.of(items[pair + 1].text)
            // The word without the two spaces that separate it from the next item.
            let end = start + keys + label - (pair + 2 < items.count ? 2 : 0)
            if column >= start && column < end { return binding.action }
            start += keys + label
        }
        return nil
    }

    /// The footer text as plain words, for tests and the summary.
    static func text(width: Int, attached: Bool = false) -> String {
        entries(width: width, attached: attached).map(\.text).joined()
    }
}
