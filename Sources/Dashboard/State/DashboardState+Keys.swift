import Telemetry

extension DashboardState {
    /// Handles one key press against the latest snapshot; returns what the program must do
    /// to the copy, or nil when the key only changed this state (or did nothing).
    ///
    /// While the stop question is open, `y` confirms (`.quit`, or `.stopCopy` when
    /// attached) and any other key cancels. While help is shown, any key closes it.
    /// `copyRunning` decides whether `q` and `S` ask first; attached, `q` detaches at once.
    ///
    /// A mouse press on a connection row selects it and one on a footer item runs its
    /// action; the wheel moves the selection, scrolling the table. `size` is the screen
    /// the last frame was drawn for (mouse positions are read against its layout).
    public mutating func handle(_ key: Key, latest snapshot: CopySnapshot, copyRunning: Bool,
                                size: TerminalSize? = nil) -> DashboardCommand? {
        if key == .resize { return nil }
        let elapsed = snapshot.elapsed
        if quitConfirmationPending {
            quitConfirmationPending = false
            if key == .character("y") || key == .character("Y") { return attached ? .stopCopy : .quit }
            log("quit cancelled", at: elapsed)
            return nil
        }
        if helpVisible {
            helpVisible = false
            return nil
        }
        if case .mouse(let event) = key {
            return handle(event, latest: snapshot, copyRunning: copyRunning, size: size)
        }
        guard let action = KeyTable.action(for: key), !proxy || KeyTable.proxyActions.contains(action) else { return nil }
        return perform(action, latest: snapshot, copyRunning: copyRunning)
    }

    private mutating func handle(_ event: MouseEvent, latest snapshot: CopySnapshot, copyRunning: Bool,
                                 size: TerminalSize?) -> DashboardCommand? {
        let shown = displayed(snapshot)
        switch event {
        case .wheelUp:
            moveSelection(by: -1, in: shown)
        case .wheelDown:
            moveSelection(by: 1, in: shown)
        case .press(let position):
            guard let size else { return nil }
            let table = ConnectionTable(snapshot: shown, state: self)
            guard let layout = DashboardLayout(size: size, tableLines: table.linesNeeded) else { return nil }
            if position.row == layout.footer.row {
                guard let action = Footer.action(atColumn: position.column, width: layout.footer.columns, attached: attached, proxy: proxy)
                else { return nil }
                return perform(action, latest: snapshot, copyRunning: copyRunning)
            }
            if let connection = table.connection(atRow: position.row, in: layout.table) {
                selected = ConnectionID(connection)
            }
        }
        return nil
    }

    /// Carries out a key table action.
    public mutating func perform(_ action: KeyAction, latest snapshot: CopySnapshot, copyRunning: Bool) -> DashboardCommand? {
        let elapsed = snapshot.elapsed
        switch action {
        case .addLane:
            return .addLane
        case .dropLane:
            return .dropLane(laneID: selectedConnection(in: displayed(snapshot))?.laneID)
        case .autoLanes:
            return .resumeAutoLanes
        case .selectUp:
            moveSelection(by: -1, in: displayed(snapshot))
        case .selectDown:
            moveSelection(by: 1, in: displayed(snapshot))
        case .togglePause:
            return .setPaused(!snapshot.paused)
        case .freezeDisplay:
            if frozenSnapshot == nil {
                frozenSnapshot = snapshot
                log("display frozen (the copy goes on); space to unfreeze", at: elapsed)
            } else {
                frozenSnapshot = nil
                log("display live again", at: elapsed)
            }
        case .cycleTheme:
            themeIndex = (themeIndex + 1) % max(1, themeNames.count)
            log("theme: \(themeNames[themeIndex])", at: elapsed)
        case .slowerRefresh:
            refreshInterval = RefreshInterval.slower(than: refreshInterval)
            log("refresh every \(Format.shortDuration(refreshInterval))", at: elapsed)
        case .fasterRefresh:
            refreshInterval = RefreshInterval.faster(than: refreshInterval)
            log("refresh every \(Format.shortDuration(refreshInterval))", at: elapsed)
        case .quit where attached:
            return .detach
        case .quit, .stopCopy:
            if copyRunning {
                quitConfirmationPending = true
                return nil
            }
            return .quit
        case .help:
            helpVisible = true
        case .sortColumn:
            sort.selectNextColumn()
            log("sorted by \(sort.description)", at: elapsed)
        case .invertSort:
            sort.invert()
            log("sorted by \(sort.description)", at: elapsed)
        case .saveSettings:
            return .saveSettings(settings)
        }
        return nil
    }

    /// The selected connection if it is still in `snapshot`.
    public func selectedConnection(in snapshot: CopySnapshot) -> ConnectionSnapshot? {
        guard let selected else { return nil }
        return snapshot.connections.first { ConnectionID($0) == selected }
    }

    /// Moves the selection through the table's rows; from no selection, down picks the
    /// first row and up the last. Stops at the ends.
    mutating func moveSelection(by step: Int, in snapshot: CopySnapshot) {
        let rows = tableRows(in: snapshot).map(ConnectionID.init)
        guard !rows.isEmpty else {
            selected = nil
            return
        }
        guard let selected, let current = rows.firstIndex(of: selected) else {
            self.selected = step > 0 ? rows.first : rows.last
            return
        }
        self.selected = rows[min(max(0, current + step), rows.count - 1)]
    }
}
