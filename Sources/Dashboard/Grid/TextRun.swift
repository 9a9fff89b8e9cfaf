/// A piece of text in one style; a line is a list of them.
public struct TextRun: Sendable, Equatable {
    public var text: String
    public var style: Style

    public init(_ text: String, _ style: Style) {
        self.text = text
        self.style = style
    }

    /// Columns the text takes.
    public var width: Int { DisplayWidth.of(text) }
}

extension CellGrid {
    /// Writes runs one after another from `position`, clipped to `clip`; returns the column
    /// after the last one.
    @discardableResult
    public mutating func write(_ runs: [TextRun], at position: Position, clip: Rect? = nil) -> Int {
        var column = position.column
        for run in runs {
            column = write(run.text, at: Position(row: position.row, column: column), style: run.style, clip: clip)
        }
        return column
    }
}

extension Array where Element == TextRun {
    /// Columns all runs take.
    var width: Int { reduce(0) { $0 + $1.width } }

    /// The runs cut to `width` columns, the last one kept ending in an ellipsis.
    func truncated(to width: Int, ellipsis: String = "…") -> [TextRun] {
        guard self.width > width else { return self }
        var result: [TextRun] = []
        var used = 0
        for run in self {
            let room = width - used
            if room <= 0 { break }
            if run.width < room {
                result.append(run)
                used += run.width
            } else {
                result.append(TextRun(TextFitting.truncate(run.text, to: room, ellipsis: ellipsis), run.style))
                break
            }
        }
        return result
    }
}
