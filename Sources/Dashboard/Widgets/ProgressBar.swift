import Telemetry

/// `███████▍░░░░░░ 42.1%  1.2 GiB / 4.0 GiB`: completed bytes against the image size.
struct ProgressBar {
    let snapshot: CopySnapshot
    let glyphs: Glyphs

    func draw(into grid: inout CellGrid, in line: Rect, theme: Theme) {
        guard let total = snapshot.bytesTotal else {
            let runs = [TextRun("copied ", theme[.dim]), TextRun(Format.bytes(snapshot.bytesDone), theme[.normal]),
                        TextRun(" (size not known yet)", theme[.dim])]
            grid.write(runs, at: Position(row: line.row, column: line.column + 1), clip: line)
            return
        }
        let fraction = total == 0 ? 1 : min(1, Double(snapshot.bytesDone) / Double(total))
        let label = [TextRun(" " + Format.percent(fraction), theme[.normal].adding(.bold)),
                     TextRun("  \(Format.bytes(snapshot.bytesDone)) / \(Format.bytes(total))", theme[.normal])]
        let barWidth = max(0, line.columns - label.width - 3)
        let bar = Self.bar(fraction: fraction, width: barWidth, glyphs: glyphs)
        var column = line.column + 1
        column = grid.write(bar.filled, at: Position(row: line.row, column: column), style: theme[.progress], clip: line)
        column = grid.write(bar.empty, at: Position(row: line.row, column: column), style: theme[.progressEmpty], clip: line)
        grid.write(label, at: Position(row: line.row, column: column), clip: line)
    }

    /// A bar `width` cells wide filled to `fraction` in eighths of a cell: the filled part
    /// (full blocks and one partial block) and the empty rest.
    static func bar(fraction: Double, width: Int, glyphs: Glyphs) -> (filled: String, empty: String) {
        guard width > 0 else { return ("", "") }
        let eighths = Int((min(max(fraction, 0), 1) * Double(width * 8)).rounded(.down))
        var filled = String(repeating: String(glyphs.eighths[7]), count: eighths / 8)
        var used = eighths / 8
        if eighths % 8 > 0, used < width {
            filled.append(glyphs.eighths[eighths % 8 - 1])
            used += 1
        }
        return (filled, String(repeating: String(glyphs.barEmpty), count: width - used))
    }
}
