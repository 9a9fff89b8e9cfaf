extension CellGrid {
    /// The characters of one row as the terminal shows them (continuation cells skipped).
    public func text(row: Int) -> String {
        guard row >= 0, row < rows else { return "" }
        var line = ""
        for column in 0..<columns {
            let cell = self[row, column]
            if !cell.isContinuation { line.append(cell.character) }
        }
        return line
    }

    /// Every row's text without trailing spaces, joined by newlines.
    public var plainText: String {
        (0..<rows).map { row in
            var line = text(row: row)
            while line.last == " " { line.removeLast() }
            return line
        }.joined(separator: "\n")
    }

    /// The first position where `needle` appears on screen, searching row by row.
    public func find(_ needle: String) -> Position? {
        for row in 0..<rows {
            let line = text(row: row)
            guard let range = line.firstRange(of: needle) else { continue }
            let prefix = line[line.startIndex..<range.lowerBound]
            return Position(row: row, column: DisplayWidth.of(String(prefix)))
        }
        return nil
    }
}
