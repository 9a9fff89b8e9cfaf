/// A box in the middle of the screen listing every key of the key table.
struct HelpOverlay {
    let glyphs: Glyphs
    /// Attached to a copy in another process: `q` detaches.
    let attached: Bool
    /// Over a proxy: only its keys.
    var proxy = false

    func draw(into grid: inout CellGrid, in frame: Rect, theme: Theme) {
        let bindings = KeyTable.bindings(attached: attached, proxy: proxy)
        let keyColumn = min(16, bindings.map { DisplayWidth.of($0.keyNames) }.max() ?? 0) + 2
        let wanted = keyColumn + (bindings.map { DisplayWidth.of($0.description) }.max() ?? 0) + 4
        let width = min(frame.columns - 2, wanted)
        let height = min(frame.rows, bindings.count + 4)
        guard width > 10, height > 3 else { return }
        let box = Rect(row: frame.row + (frame.rows - height) / 2, column: frame.column + (frame.columns - width) / 2,
                       columns: width, rows: height)
        let style = theme[.help], border = theme[.border].over(style)
        grid.fill(box, style: style)
        drawBorder(into: &grid, box: box, style: border)
        let title = " keys "
        grid.write(title, at: Position(row: box.row, column: box.column + (width - DisplayWidth.of(title)) / 2),
                   style: theme[.group].over(style), clip: box)
        let inside = Rect(row: box.row + 1, column: box.column + 2, columns: width - 4, rows: height - 2)
        // On the smallest screens the keys come before the closing line, and when they still
        // do not fit they go in two columns (descriptions shortened).
        let closingLine = inside.rows > bindings.count
        let rows = closingLine ? inside.rows - 1 : inside.rows
        let columns = bindings.count > rows ? 2 : 1
        let columnWidth = inside.columns / columns
        for (index, binding) in bindings.prefix(rows * columns).enumerated() {
            let line = inside.line(index % max(1, rows))
            let cell = Rect(row: line.row, column: line.column + (index / max(1, rows)) * columnWidth,
                            columns: columnWidth - (columns > 1 ? 1 : 0), rows: line.rows)
            let runs = [TextRun(TextFitting.pad(binding.keyNames, to: min(keyColumn, columns > 1 ? DisplayWidth.of(binding.keyNames) + 1 : keyColumn)),
                                theme[.footerKey].over(style)),
                        TextRun(binding.description, style)]
            grid.write(runs.truncated(to: cell.columns, ellipsis: glyphs.ellipsis), at: Position(row: cell.row, column: cell.column), clip: cell)
        }
        guard closingLine else { return }
        grid.write("any key closes this help", at: Position(row: inside.bottom - 1, column: inside.column),
                   style: theme[.dim].over(style), clip: inside)
    }

    private func drawBorder(into grid: inout CellGrid, box: Rect, style: Style) {
        grid.fill(Rect(row: box.row, column: box.column + 1, columns: box.columns - 2, rows: 1), with: glyphs.horizontal, style: style)
        grid.fill(Rect(row: box.bottom - 1, column: box.column + 1, columns: box.columns - 2, rows: 1), with: glyphs.horizontal, style: style)
        for row in box.row + 1..<box.bottom - 1 {
            grid.write(String(glyphs.vertical), at: Position(row: row, column: box.column), style: style)
            grid.write(String(glyphs.vertical), at: Position(row: row, column: box.right - 1), style: style)
        }
        grid.write(String(glyphs.topLeft), at: Position(row: box.row, column: box.column), style: style)
        grid.write(String(glyphs.topRight), at: Position(row: box.row, column: box.right - 1), style: style)
        grid.write(String(glyphs.bottomLeft), at: Position(row: box.bottom - 1, column: box.column), style: style)
        grid.write(String(glyphs.bottomRight), at: Position(row: box.bottom - 1, column: box.right - 1), style: style)
    }
}
