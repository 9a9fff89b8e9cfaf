/// The aggregate rate over the whole transfer, btop-style, below the connection table.
///
/// ```
/// ── throughput, whole transfer ───────────── + lane added  - dropped  x failed  r reconnected  ⚠ stall
///  40.0 MiB/s ┤        ▄▆█▇▆▇██
///  20.0 MiB/s ┤  ▂▄▄▄▅▆████████
///             │  +     +
///             └──────⚠⚠────────
///              0:00               0:16
/// ```
///
/// A title line with the legend; the plot (block glyphs in eighths, the scale rounded up
/// to a whole number of the unit, labelled at the top, the middle and zero); a row of
/// markers (`ChartMarker.table`); the time axis, with stall periods marked by the stall
/// glyph (shape, not colour alone); the start and end times.
struct ThroughputChart {
    /// The smallest chart: title, two plot rows, markers, axis, times.
    static let minimumRows = 6
    static let labelWidth = 12

    let history: ThroughputHistory
    let markers: [ChartMarker]
    let glyphs: Glyphs

    func draw(into grid: inout CellGrid, in frame: Rect, theme: Theme) {
        guard frame.rows >= Self.minimumRows, frame.columns > Self.labelWidth + 4 else { return }
        drawTitle(into: &grid, line: frame.line(0), theme: theme)
        let plotRows = frame.rows - 4
        let plotColumn = frame.column + Self.labelWidth + 1
        let width = frame.right - plotColumn - 1
        let columns = history.columns(width)
        let scale = Self.scale(for: columns.map(\.bytesPerSecond).max() ?? 0)
        let axis = theme[.dim]

        for row in 0..<plotRows {
            let line = frame.line(1 + row)
            // The top row carries the full scale, the middle row half of it.
            let label: String? = row == 0 ? Format.rate(scale) : (row == plotRows / 2 && plotRows >= 4 ? Format.rate(scale / 2) : nil)
            if let label {
                grid.write(TextFitting.pad(label, to: Self.labelWidth - 1, alignRight: true) + (glyphs == .unicode ? " ┤" : " +"),
                           at: Position(row: line.row, column: line.column), style: axis, clip: line)
            } else {
                grid.write(String(repeating: " ", count: Self.labelWidth) + String(glyphs.vertical),
                           at: Position(row: line.row, column: line.column), style: axis, clip: line)
            }
            // Rows count from the bottom; each holds 8 eighths.
            let level = plotRows - 1 - row
            for (index, column) in columns.enumerated() {
                let eighths = scale > 0 ? Int((column.bytesPerSecond / scale * Double(plotRows * 8)).rounded()) : 0
                let here = min(8, max(0, eighths - level * 8))
                guard here > 0 else { continue }
                grid.write(String(glyphs.sparkline[here - 1]), at: Position(row: line.row, column: plotColumn + index),
                           style: here == 8 || level > 0 ? theme[.sparklineHigh] : theme[.sparklineLow], clip: line)
            }
        }

        let markerLine = frame.line(frame.rows - 3)
        grid.write(String(repeating: " ", count: Self.labelWidth) + String(glyphs.vertical),
                   at: Position(row: markerLine.row, column: markerLine.column), style: axis, clip: markerLine)
        if history.span > .zero, width > 0 {
            for marker in markers {
                let index = min(width - 1, max(0, Int(marker.elapsed / history.span * Double(width))))
                grid.write(String(marker.glyph), at: Position(row: markerLine.row, column: plotColumn + index),
                           style: theme[.warning].adding(.bold), clip: markerLine)
            }
        }

        let axisLine = frame.line(frame.rows - 2)
        grid.write(String(repeating: " ", count: Self.labelWidth) + String(glyphs.bottomLeft)
                   + String(repeating: String(glyphs.horizontal), count: max(0, width)),
                   at: Position(row: axisLine.row, column: axisLine.column), style: axis, clip: axisLine)
        for (index, column) in columns.enumerated() where column.stalled {
            grid.write(String(glyphs.stall), at: Position(row: axisLine.row, column: plotColumn + index),
                       style: theme[.stall].adding([.bold, .reverse]), clip: axisLine)
        }

        let timeLine = frame.line(frame.rows - 1)
        grid.write(Format.clock(.zero), at: Position(row: timeLine.row, column: plotColumn), style: axis, clip: timeLine)
        let endLabel = Format.clock(history.end)
        grid.write(endLabel, at: Position(row: timeLine.row, column: frame.right - 1 - DisplayWidth.of(endLabel)), style: axis, clip: timeLine)
    }

    /// `── throughput, whole transfer ──── + lane added  - dropped … ⚠ stall`.
    private func drawTitle(into grid: inout CellGrid, line: Rect, theme: Theme) {
        grid.fill(line, with: glyphs.horizontal, style: theme[.border])
        grid.write([TextRun(String(glyphs.horizontal), theme[.border]), TextRun(" throughput, whole transfer ", theme[.group])],
                   at: Position(row: line.row, column: line.column), clip: line)
        var legend: [TextRun] = [TextRun(" ", theme[.dim])]
        for entry in ChartMarker.table {
            legend.append(TextRun(String(entry.glyph), theme[.warning].adding(.bold)))
            legend.append(TextRun(" \(entry.legend)  ", theme[.dim]))
        }
        legend.append(TextRun(String(glyphs.stall), theme[.stall].adding([.bold, .reverse])))
        legend.append(TextRun(" stall ", theme[.dim]))
        let width = legend.width
        if width + 32 <= line.columns {
            grid.write(legend, at: Position(row: line.row, column: line.right - width - 1), clip: line)
        }
    }

    /// The chart's full scale: `maximum` rounded up to a round step (1, 1.5, 2, 2.5, 3, 4,
    /// 5, 6 or 8 times a power of ten) of its unit (KiB/s, MiB/s, …), so the labels read
    /// as round numbers and the plot uses most of its height.
    static func scale(for maximum: Double) -> Double {
        guard maximum > 0, maximum.isFinite else { return 1_048_576 }
        var unit = 1.0
        while maximum / unit >= 1024 { unit *= 1024 }
        let value = maximum / unit
        var step = 1.0
        while step * 10 <= value { step *= 10 }
        for factor in [1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0] where factor * step >= value {
            return factor * step * unit
        }
        return 10 * step * unit
    }
}
