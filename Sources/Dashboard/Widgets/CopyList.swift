/// Draws the list of running copies: a title, one row per copy (the selected one marked
/// and highlighted), and the keys at the bottom. A pure function, as `render` is.
public func renderCopyList(_ state: CopyListState, theme: Theme, size: TerminalSize) -> CellGrid {
    var grid = CellGrid(size: size, fill: Cell(style: theme[.normal]))
    guard size.rows >= 3, size.columns >= 20 else {
        grid.write("terminal too small", at: Position(row: 0, column: 0), style: theme[.warning])
        return grid
    }
    let title = Rect(row: 0, column: 0, columns: size.columns, rows: 1)
    grid.fill(title, style: theme[.header])
    let count = state.entries.count
    grid.write(" nbdtop  \(count) running cop\(count == 1 ? "y" : "ies")", at: Position(row: 0, column: 0),
               style: theme[.header], clip: title)
    let list = Rect(row: 2, column: 0, columns: size.columns, rows: size.rows - 3)
    if state.entries.isEmpty {
        let text = state.loaded ? "no copy is running; nbdtop copy --background … starts one" : "looking for copies…"
        grid.write(" " + text, at: Position(row: list.row, column: 0), style: theme[.dim], clip: list)
    }
    // Keep the selected row in view.
    let first = max(0, (state.selectedIndex ?? 0) - list.rows + 1)
    for (offset, entry) in state.entries.dropFirst(first).prefix(list.rows).enumerated() {
        let line = list.line(offset)
        let selected = entry.pid == state.selectedPID
        let style = selected ? theme[.selected] : theme[.normal]
        if selected { grid.fill(line, style: style) }
        grid.write((selected ? ">" : " ") + entry.line, at: Position(row: line.row, column: 0), style: style, clip: line)
    }
    let footer = Rect(row: size.rows - 1, column: 0, columns: size.columns, rows: 1)
    grid.fill(footer, style: theme[.footer])
    var runs: [TextRun] = [TextRun(" ", theme[.footer])]
    for entry in CopyListState.keys {
        runs.append(TextRun(entry.footerKeys, theme[.footerKey]))
        runs.append(TextRun(" \(entry.footerLabel)  ", theme[.footer]))
    }
    grid.write(runs, at: Position(row: footer.row, column: 0), clip: footer)
    return grid
}
