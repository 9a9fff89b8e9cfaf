/// The event pane: a title line (with the program's hint, if any), then the latest
/// events, newest at the bottom.
struct EventPane {
    let log: EventLog
    let hint: String?
    let glyphs: Glyphs

    func draw(into grid: inout CellGrid, in frame: Rect, theme: Theme) {
        guard frame.rows > 0 else { return }
        let title = frame.line(0)
        grid.fill(title, with: glyphs.horizontal, style: theme[.border])
        let end = grid.write([TextRun(String(glyphs.horizontal), theme[.border]), TextRun(" events ", theme[.group])],
                             at: Position(row: title.row, column: title.column), clip: title)
        if let hint {
            let text = " " + TextFitting.truncate(hint, to: max(0, title.right - end - 4), ellipsis: glyphs.ellipsis) + " "
            grid.write(text, at: Position(row: title.row, column: title.right - DisplayWidth.of(text) - 1),
                       style: theme[.warning].adding(.bold), clip: title)
        }
        let rows = frame.rows - 1
        let shown = log.entries.suffix(rows)
        for (index, entry) in shown.enumerated() {
            let line = frame.line(index + 1)
            let runs = [TextRun(" " + TextFitting.pad(Format.clock(entry.elapsed), to: 7, alignRight: true) + "  ", theme[.dim]),
                        TextRun(entry.text, Self.style(entry.severity, theme))]
            grid.write(runs.truncated(to: line.columns, ellipsis: glyphs.ellipsis), at: Position(row: line.row, column: line.column), clip: line)
        }
    }

    static func style(_ severity: EventSeverity, _ theme: Theme) -> Style {
        switch severity {
        case .info: return theme[.normal]
        case .ok: return theme[.ok]
        case .warning: return theme[.warning]
        case .error: return theme[.error]
        }
    }
}
