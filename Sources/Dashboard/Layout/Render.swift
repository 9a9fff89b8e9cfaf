import Telemetry

/// Draws the whole dashboard for one snapshot: a pure function of its inputs, so tests
/// read the result cell by cell and the terminal layer only copies it out.
///
/// `theme` should already be mapped to the terminal (`Theme.mapped(to:)`); unmapped
/// colours are mapped by the terminal layer. While `state` is frozen, its frozen snapshot
/// is drawn instead of `snapshot`.
public func render(snapshot: CopySnapshot, state: DashboardState, theme: Theme, size: TerminalSize) -> CellGrid {
    var grid = CellGrid(size: size, fill: Cell(style: theme[.normal]))
    let shown = state.displayed(snapshot)
    let table = ConnectionTable(snapshot: shown, state: state)
    guard let layout = DashboardLayout(size: size, tableLines: table.linesNeeded) else {
        TooSmallScreen(size: size, quitPending: state.quitConfirmationPending).draw(into: &grid, theme: theme)
        return grid
    }
    Header(snapshot: shown, state: state).draw(into: &grid, in: layout.header, theme: theme)
    table.draw(into: &grid, in: layout.table, theme: theme)
    ThroughputChart(history: state.throughput, markers: state.markers, glyphs: state.glyphs)
        .draw(into: &grid, in: layout.chart, theme: theme)
    EventPane(log: state.eventLog, hint: state.hint, glyphs: state.glyphs).draw(into: &grid, in: layout.events, theme: theme)
    Footer(state: state, themeName: theme.name).draw(into: &grid, in: layout.footer, theme: theme)
    if state.helpVisible {
        HelpOverlay(glyphs: state.glyphs, attached: state.attached, proxy: state.proxy).draw(into: &grid, in: grid.bounds, theme: theme)
    }
    return grid
}

/// `render` for a `(columns, rows)` pair.
public func render(snapshot: CopySnapshot, state: DashboardState, theme: Theme, size: (columns: Int, rows: Int)) -> CellGrid {
    render(snapshot: snapshot, state: state, theme: theme, size: TerminalSize(columns: size.columns, rows: size.rows))
}
