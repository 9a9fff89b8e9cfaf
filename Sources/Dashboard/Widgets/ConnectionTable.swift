import Telemetry

/// The connection table: column titles, then the source connections under a heading,
/// then the destination ones; one row per connection, the selected one highlighted, in
/// the state's sort order. When the destination is not NBD (`null:`, a file, a pipe) its
/// "connections" carry no figures of their own: one row per lane then, the source's
/// figures with the destination's write latency as a column. Scrolls to keep the
/// selected row visible.
struct ConnectionTable {
    let snapshot: CopySnapshot
    let state: DashboardState

    /// A line of the table body.
    enum Line: Equatable {
        case heading(ConnectionSide)
        case connection(ConnectionSnapshot)
    }

    /// Headings and rows in display order.
    var lines: [Line] {
        var lines: [Line] = []
        let rows = state.tableRows(in: snapshot)
        for side in state.sidesShown(in: snapshot) {
            let rows = rows.filter { $0.side == side }
            guard !rows.isEmpty else { continue }
            lines.append(.heading(side))
            lines.append(contentsOf: rows.map(Line.connection))
        }
        return lines
    }

    /// Rows the whole table needs: the titles and every line (or the line saying there is none).
    var linesNeeded: Int { max(1, lines.count) + 1 }

    /// Lanes share one row: the destination's p50 goes into the `write` column.
    private var perLane: Bool { !snapshot.destinationIsNBD }

    private func writeLatency(lane: Int) -> Duration? {
        snapshot.connections.first { $0.laneID == lane && $0.side == .destination }?.latencyP50
    }

    /// Which lines show in `frame`, keeping the selected one in view.
    private func window(_ body: [Line], in frame: Rect) -> ScrollWindow {
        ScrollWindow(lineCount: body.count, visibleRows: frame.rows - 1, selectedLine: body.firstIndex { line in
            if case .connection(let connection) = line { return ConnectionID(connection) == state.selected }
            return false
        })
    }

    /// The connection drawn on screen row `row` when the table is in `frame`, if any: what
    /// a mouse press there selects.
    func connection(atRow row: Int, in frame: Rect) -> ConnectionSnapshot? {
        let body = lines
        let window = window(body, in: frame)
        let offset = row - frame.row - 1 - (window.hiddenAbove > 0 ? 1 : 0)
        guard row < frame.bottom, offset >= 0, offset < window.count,
              case .connection(let connection) = body[window.first + offset] else { return nil }
        return connection
    }

    func draw(into grid: inout CellGrid, in frame: Rect, theme: Theme) {
        guard frame.rows > 0 else { return }
        let plan = TablePlan(width: frame.columns, writeLatency: perLane, withClient: !state.connectionLabels.isEmpty,
                             hidden: state.hiddenColumns)
        let body = lines
        let window = window(body, in: frame)
        drawTitles(into: &grid, line: frame.line(0), plan: plan, theme: theme)
        if body.isEmpty {
            grid.write(" no connections yet", at: Position(row: frame.row + 1, column: frame.column), style: theme[.dim], clip: frame)
            return
        }
        let maximum = historyMaximum(plan: plan)
        var row = 1
        if window.hiddenAbove > 0 {
            drawMore("↑ \(window.hiddenAbove) more above", into: &grid, line: frame.line(row), theme: theme)
            row += 1
        }
        for line in body[window.first..<window.first + window.count] {
            let target = frame.line(row)
            row += 1
            switch line {
            case .heading(let side): drawHeading(side, into: &grid, line: target, theme: theme)
            case .connection(let connection):
                ConnectionRow(connection: connection, selected: ConnectionID(connection) == state.selected,
                              requestsPerLane: state.requestsPerLane, glyphs: state.glyphs, plan: plan, historyMaximum: maximum,
                              writeLatency: perLane ? writeLatency(lane: connection.laneID) : nil,
                              clientLabel: state.connectionLabels[connection.laneID])
                    .draw(into: &grid, line: target, theme: theme)
            }
        }
        if window.hiddenBelow > 0 {
            drawMore("↓ \(window.hiddenBelow) more below (↑↓ scroll)", into: &grid, line: frame.line(row), theme: theme)
        }
    }

    private func drawMore(_ text: String, into grid: inout CellGrid, line: Rect, theme: Theme) {
        grid.write("  " + text, at: Position(row: line.row, column: line.column), style: theme[.dim], clip: line)
    }

    /// The largest rate any visible sparkline shows: every sparkline shares this scale so
    /// rows can be compared.
    private func historyMaximum(plan: TablePlan) -> Double {
        snapshot.connections.reduce(0) { partial, connection in
            max(partial, connection.rateHistory.suffix(plan.historyWidth).max() ?? 0)
        }
    }

    private func drawTitles(into grid: inout CellGrid, line: Rect, plan: TablePlan, theme: Theme) {
        let style = theme[.tableHeader]
        grid.fill(line, style: style)
        var column = line.column
        for tableColumn in plan.columns {
            let width = plan.width(of: tableColumn)
            var title = tableColumn.title
            if tableColumn == .history, DisplayWidth.of(title) > width { title = "history" }
            if tableColumn == state.sort.column.tableColumn {
                let arrow = state.glyphs == .unicode ? (state.sort.descending ? "▼" : "▲") : (state.sort.descending ? "v" : "^")
                // The arrow replaces the title's last letter when there is no room beside it.
                let bare = String(title.drop { $0 == " " })
                title = String(bare.prefix(min(bare.count, max(0, width - 1)))) + arrow
            }
            grid.write(TextFitting.pad(title, to: width, alignRight: tableColumn.alignRight),
                       at: Position(row: line.row, column: column), style: style, clip: line)
            column += width + 1
        }
    }

    /// `source  4 connections  250.0 MiB/s  1 stalled`.
    private func drawHeading(_ side: ConnectionSide, into grid: inout CellGrid, line: Rect, theme: Theme) {
        let rows = snapshot.connections.filter { $0.side == side }
        let open = rows.filter { $0.state == .active || $0.state == .draining || $0.state == .connecting }
        let rate = rows.reduce(0) { $0 + $1.bytesPerSecond }
        let stalled = rows.filter(\.stalled).count
        let name = state.proxy ? " clients"
            : perLane ? " lanes \(state.glyphs.arrow) \(state.destinationName)" : side == .source ? " source" : " destination"
        var runs = [TextRun(name, theme[.group]),
                    TextRun("  \(open.count) open of \(rows.count)  ", theme[.dim]),
                    TextRun(Format.rate(rate), theme[.rate])]
        if stalled > 0 {
            runs.append(TextRun("  ", theme[.dim]))
            runs.append(TextRun("\(state.glyphs.stall) \(stalled) stalled", theme[.stall].adding([.bold, .reverse])))
        }
        grid.write(runs, at: Position(row: line.row, column: line.column), clip: line)
    }
}
