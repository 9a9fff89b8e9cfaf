/// A screen's worth of cells: what `render` produces and the terminal layer copies out.
///
/// Writes are clipped to the grid (and to an optional rectangle) and are safe with
/// double-width characters: a wide character never straddles a clip edge, and
/// overwriting half of one blanks the other half.
public struct CellGrid: Sendable, Equatable {
    public let columns: Int
    public let rows: Int
    private var cells: [Cell]

    /// A grid of `size`, every cell `fill`.
    public init(size: TerminalSize, fill: Cell = .blank) {
        columns = size.columns
        rows = size.rows
        cells = Array(repeating: fill, count: size.columns * size.rows)
    }

    public var size: TerminalSize { TerminalSize(columns: columns, rows: rows) }
    /// The whole grid as a rectangle.
    public var bounds: Rect { Rect(row: 0, column: 0, columns: columns, rows: rows) }

    /// The cell at a position; blank outside the grid.
    public subscript(row: Int, column: Int) -> Cell {
        guard row >= 0, row < rows, column >= 0, column < columns else { return .blank }
        return cells[row * columns + column]
    }

    /// Writes `text` from `position` on one line, clipped to `clip` (and the grid).
    /// Control characters show as `?`. Returns the column after the last cell written to.
    @discardableResult
    public mutating func write(_ text: String, at position: Position, style: Style, clip: Rect? = nil) -> Int {
        let area = (clip ?? bounds).intersection(bounds)
        var column = position.column
        guard position.row >= area.row, position.row < area.bottom else {
            return column + DisplayWidth.of(text)
        }
        for character in text {
            let shown: Character = character.unicodeScalars.first.map { $0.value < 0x20 || $0.value == 0x7F } == true ? "?" : character
            let width = DisplayWidth.of(shown)
            if width == 0 { continue }
            if column >= area.right { break }
            if column < area.column {
                // Partly left of the clip: show the visible half of a wide character as blank.
                if column + width > area.column { put(Cell(character: " ", style: style), row: position.row, column: area.column) }
                column += width
                continue
            }
            if column + width > area.right {
                put(Cell(character: " ", style: style), row: position.row, column: column)
                column = area.right
                break
            }
            put(Cell(character: shown, style: style), row: position.row, column: column)
            if width == 2 { put(Cell(character: " ", style: style, isContinuation: true), row: position.row, column: column + 1) }
            column += width
        }
        return column
    }

    /// Fills a rectangle with one character and style.
    public mutating func fill(_ rect: Rect, with character: Character = " ", style: Style) {
        let area = rect.intersection(bounds)
        guard !area.isEmpty else { return }
        let width = max(1, DisplayWidth.of(character))
        if width == 1 {
            let cell = Cell(character: character, style: style)
            for row in area.row..<area.bottom {
                for column in area.column..<area.right { put(cell, row: row, column: column) }
            }
            return
        }
        for row in area.row..<area.bottom {
            var column = area.column
            while column + width <= area.right {
                write(String(character), at: Position(row: row, column: column), style: style, clip: area)
                column += width
            }
            if column < area.right { write(" ", at: Position(row: row, column: column), style: style, clip: area) }
        }
    }

    /// Changes the style of the cells in `rect`, keeping their characters.
    public mutating func restyle(_ rect: Rect, _ transform: (Style) -> Style) {
        let area = rect.intersection(bounds)
        guard !area.isEmpty else { return }
        for row in area.row..<area.bottom {
            for column in area.column..<area.right {
                let index = row * columns + column
                let style = transform(cells[index].style)
                cells[index].foreground = style.foreground
                cells[index].background = style.background
                cells[index].attributes = style.attributes
            }
        }
    }

    /// Stores one cell, repairing any double-width character it cuts in half.
    private mutating func put(_ cell: Cell, row: Int, column: Int) {
        guard row >= 0, row < rows, column >= 0, column < columns else { return }
        let index = row * columns + column
        if !cell.isContinuation {
            if cells[index].isContinuation, column > 0 {
                cells[index - 1].character = " "
            }
            if column + 1 < columns, cells[index + 1].isContinuation {
                cells[index + 1].isContinuation = false
                cells[index + 1].character = " "
            }
        }
        cells[index] = cell
    }
}
