import Telemetry

/// One connection's row of the table.
struct ConnectionRow {
    let connection: ConnectionSnapshot
    let selected: Bool
    let requestsPerLane: Int
    let glyphs: Glyphs
    let plan: TablePlan
    let historyMaximum: Double
    /// One row per lane: the destination's p50 write latency.
    var writeLatency: Duration? = nil
    /// For the client column.
    var clientLabel: String? = nil

    func draw(into grid: inout CellGrid, line: Rect, theme: Theme) {
        let base = selected ? theme[.selected] : theme[.normal]
        grid.fill(line, style: base)
        var column = line.column
        for tableColumn in plan.columns {
            let width = plan.width(of: tableColumn)
            let cell = Rect(row: line.row, column: column, columns: width, rows: 1).intersection(line)
            drawCell(tableColumn, into: &grid, in: cell, theme: theme, base: base)
            column += width + 1
        }
    }

    private var closed: Bool { connection.state == .closed }

    /// A style for this row: dimmed when the connection is closed, on the selection
    /// highlight when selected.
    private func style(_ role: ThemeRole, _ theme: Theme, base: Style) -> Style {
        var style = closed && role != .error ? theme[.dim] : theme[role]
        if selected {
            // The highlight's background wins, so the whole row reads as selected.
            style.background = base.background
            style.attributes.formUnion(base.attributes)
            if style.foreground == .terminalDefault { style.foreground = base.foreground }
        }
        return style
    }

    private func drawCell(_ column: TableColumn, into grid: inout CellGrid, in cell: Rect, theme: Theme, base: Style) {
        let at = Position(row: cell.row, column: cell.column)
        func text(_ value: String, _ role: ThemeRole = .normal) {
            grid.write(TextFitting.pad(value, to: cell.columns, alignRight: column.alignRight), at: at,
                       style: style(role, theme, base: base), clip: cell)
        }
        switch column {
        case .id:
            text(TextFitting.pad(String(connection.laneID), to: 3, alignRight: true), .normal)
            if selected { grid.write(String(glyphs.selection), at: at, style: style(.normal, theme, base: base).adding(.bold), clip: cell) }
        case .state:
            text(Self.stateText(connection), Self.stateRole(connection.state))
        case .rate:
            text(Format.compactRate(connection.bytesPerSecond), .rate)
        case .history:
            drawHistory(into: &grid, in: cell, theme: theme, base: base)
        case .inFlight:
            let parts = InFlightBar.parts(count: connection.inFlight, capacity: requestsPerLane, barWidth: max(0, cell.columns - 4), glyphs: glyphs)
            let runs = [TextRun(parts.count + " ", style(.normal, theme, base: base)),
                        TextRun(parts.filled, style(.inflight, theme, base: base)),
                        TextRun(parts.empty, style(.progressEmpty, theme, base: base))]
            grid.write(runs, at: at, clip: cell)
        case .p50:
            text(connection.latencyP50.map(Format.shortDuration) ?? "-")
        case .p99:
            text(connection.latencyP99.map(Format.shortDuration) ?? "-")
        case .oldest:
            text(connection.oldestInFlight.map(Format.shortDuration) ?? "-", connection.stalled ? .stall : .normal)
        case .stall:
            drawStall(into: &grid, in: cell, theme: theme, base: base)
        case .errors:
            text(String(connection.errors), connection.errors > 0 ? .error : .normal)
        case .bytes:
            text(Format.bytes(connection.bytes, separator: ""))
        case .slow:
            text(String(connection.slowRequests), connection.slowRequests > 0 ? .warning : .normal)
        case .held:
            text(String(connection.requestsHeldBehind), connection.requestsHeldBehind > 0 ? .warning : .normal)
        case .writeLatency:
            text(writeLatency.map(Format.shortDuration) ?? "-")
        case .retries:
            text(String(connection.retries), connection.retries > 0 ? .warning : .normal)
        case .client:
            text(TextFitting.truncate(clientLabel ?? "-", to: cell.columns, ellipsis: glyphs.ellipsis))
        }
    }

    /// The sparkline, or why there is none (closed, failed with its reason).
    private func drawHistory(into grid: inout CellGrid, in cell: Rect, theme: Theme, base: Style) {
        let at = Position(row: cell.row, column: cell.column)
        switch connection.state {
        case .failed:
            let reason = connection.failureReason.map { "failed: " + $0 } ?? "failed"
            grid.write(TextFitting.truncate(reason, to: cell.columns, ellipsis: glyphs.ellipsis), at: at,
                       style: style(.error, theme, base: base), clip: cell)
        case .closed:
            grid.write("closed", at: at, style: style(.dim, theme, base: base), clip: cell)
        default:
            Sparkline.draw(connection.rateHistory, into: &grid, at: at, width: cell.columns, maximum: historyMaximum,
                           glyphs: glyphs, low: style(.sparklineLow, theme, base: base), high: style(.sparklineHigh, theme, base: base))
        }
    }

    /// `⚠   3  1.23s`: the marker (glyph plus bold and reverse, never colour alone) while
    /// stalled, then episodes and total stalled time.
    private func drawStall(into grid: inout CellGrid, in cell: Rect, theme: Theme, base: Style) {
        let time = connection.stallEpisodes == 0 ? "-" : Format.shortDuration(connection.stalledTime)
        let figures = TextFitting.pad(String(connection.stallEpisodes), to: 3, alignRight: true) + " "
            + TextFitting.pad(time, to: 6, alignRight: true)
        let figureRole: ThemeRole = connection.stalled ? .stall : (connection.stallEpisodes > 0 ? .warning : .dim)
        grid.write(figures, at: Position(row: cell.row, column: cell.column + 2), style: style(figureRole, theme, base: base), clip: cell)
        if connection.stalled {
            var marker = theme[.stall].adding([.bold, .reverse])
            // On the highlighted row reverse would blend in; bold and underline stand out there.
            if selected { marker = theme[.stall].adding([.bold, .underline]) }
            grid.write(String(glyphs.stall), at: Position(row: cell.row, column: cell.column), style: marker, clip: cell)
        }
    }

    static func stateText(_ connection: ConnectionSnapshot) -> String {
        switch connection.state {
        case .connecting: return "conn"
        case .active: return "active"
        case .reconnecting: return "recon\(connection.reconnectAttempt)"
        case .draining: return "drain"
        case .closed: return "closed"
        case .failed: return "failed"
        }
    }

    static func stateRole(_ state: ConnectionState) -> ThemeRole {
        switch state {
        case .connecting, .closed: return .dim
        case .active: return .ok
        case .draining, .reconnecting: return .warning
        case .failed: return .error
        }
    }
}
