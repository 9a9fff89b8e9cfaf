/// A rate history as block glyphs `▁▂▃▄▅▆▇█`, scaled so `maximum` is a full block.
public enum Sparkline {
    /// The level of each value: 0 (blank) for zero or less, else 1 to 8, where `maximum`
    /// (and anything above it) is 8.
    public static func levels(_ values: [Double], maximum: Double) -> [Int] {
        values.map { value in
            guard value > 0, maximum > 0, value.isFinite else { return 0 }
            return min(8, max(1, Int((value / maximum * 8).rounded(.up))))
        }
    }

    /// The last `width` values as glyphs, right-aligned (the newest at the right edge),
    /// padded with blanks on the left when the history is shorter.
    public static func text(_ values: [Double], width: Int, maximum: Double, glyphs: Glyphs = .unicode) -> String {
        guard width > 0 else { return "" }
        let shown = Array(values.suffix(width))
        let padding = String(repeating: " ", count: width - shown.count)
        return padding + String(levels(shown, maximum: maximum).map { $0 == 0 ? " " : glyphs.sparkline[$0 - 1] })
    }

    /// Draws a sparkline: levels 1 to 4 in `low`, 5 to 8 in `high`.
    static func draw(_ values: [Double], into grid: inout CellGrid, at position: Position, width: Int,
                     maximum: Double, glyphs: Glyphs, low: Style, high: Style) {
        guard width > 0 else { return }
        let shown = Array(values.suffix(width))
        var column = position.column + width - shown.count
        for level in levels(shown, maximum: maximum) {
            let character: Character = level == 0 ? " " : glyphs.sparkline[level - 1]
            grid.write(String(character), at: Position(row: position.row, column: column), style: level >= 5 ? high : low)
            column += 1
        }
    }
}
