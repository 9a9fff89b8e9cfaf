/// What a key does on the dashboard.
public enum KeyAction: String, Sendable, CaseIterable {
    case addLane, dropLane, selectUp, selectDown, togglePause, freezeDisplay, cycleTheme
    case slowerRefresh, fasterRefresh, quit, stopCopy, help
    case sortColumn, invertSort, saveSettings, autoLanes
}

/// One entry of the key table: the keys, what they do, and how help and footer say it.
public struct KeyBinding: Sendable {
    public var keys: [Key]
    public var action: KeyAction
    /// One line for the help overlay.
    public var description: String
    /// The keys as the footer shows them (short, e.g. `↑↓`), and the footer's word.
    public var footerKeys: String
    public var footerLabel: String

    /// The keys as help lists them: `+ a`, `↑ k`.
    public var keyNames: String { keys.map(\.displayName).joined(separator: " ") }
}

/// The one key table: it drives dispatch, the help overlay and the footer.
///
/// Attached to a copy in another process (`nbdtop attach`), `q` detaches and leaves the
/// copy running; `S` stops the copy in both cases.
public enum KeyTable {
    /// The table of a dashboard over a copy in this process.
    public static let bindings = bindings(attached: false)

    /// The table as help and footer show it. Attached, `q` detaches and the footer shows
    /// `S`; otherwise `q` already stops the copy, so `S` is in the help only.
    public static func bindings(attached: Bool) -> [KeyBinding] {
        table.map { binding in
            var shown = binding
            switch binding.action {
            case .quit where attached:
                shown.description = "detach: leave the dashboard, the copy goes on"
                shown.footerLabel = "detach"
            case .stopCopy where !attached:
                shown.footerKeys = ""
                shown.footerLabel = ""
            default:
                break
            }
            return shown
        }
    }

    private static let table: [KeyBinding] = [
        KeyBinding(keys: [.character("+"), .character("a")], action: .addLane,
                   description: "add a lane (one more source and destination connection)",
                   footerKeys: "+", footerLabel: "add"),
        KeyBinding(keys: [.character("-"), .character("d")], action: .dropLane,
                   description: "drop the selected lane (the newest when none is selected)",
                   footerKeys: "-", footerLabel: "drop"),
        KeyBinding(keys: [.character("A")], action: .autoLanes,
                   description: "tune lanes automatically again (after + or - made them manual)",
                   footerKeys: "", footerLabel: ""),
        KeyBinding(keys: [.up, .character("k")], action: .selectUp,
                   description: "select the connection above", footerKeys: "↑↓", footerLabel: "select"),
        KeyBinding(keys: [.down, .character("j")], action: .selectDown,
                   description: "select the connection below", footerKeys: "", footerLabel: ""),
        KeyBinding(keys: [.character("p")], action: .togglePause,
                   description: "pause or resume the transfer (requests in flight finish)",
                   footerKeys: "p", footerLabel: "pause"),
        KeyBinding(keys: [.character(" ")], action: .freezeDisplay,
                   description: "freeze or unfreeze the display (the copy goes on)",
                   footerKeys: "␣", footerLabel: "freeze"),
        KeyBinding(keys: [.function(6), .character("o")], action: .sortColumn,
                   description: "sort the table by the next column (lane, rate, in flight, p50, p99, oldest, stalls, errors)",
                   footerKeys: "F6", footerLabel: "sort"),
        KeyBinding(keys: [.character("I")], action: .invertSort,
                   description: "invert the sort order", footerKeys: "", footerLabel: ""),
        KeyBinding(keys: [.character("t")], action: .cycleTheme,
                   description: "next colour theme", footerKeys: "t", footerLabel: "theme"),
        KeyBinding(keys: [.character("<")], action: .slowerRefresh,
                   description: "refresh less often", footerKeys: "<>", footerLabel: "refresh"),
        KeyBinding(keys: [.character(">")], action: .fasterRefresh,
                   description: "refresh more often", footerKeys: "", footerLabel: ""),
        KeyBinding(keys: [.character("q"), .function(10)], action: .quit,
                   description: "quit (asks y/n while the copy runs; y stops it cleanly)",
                   footerKeys: "q", footerLabel: "quit"),
        KeyBinding(keys: [.character("S")], action: .stopCopy,
                   description: "stop the copy (asks y/n; y stops it cleanly, as Ctrl-C does)",
                   footerKeys: "S", footerLabel: "stop"),
        KeyBinding(keys: [.function(2), .character("W")], action: .saveSettings,
                   description: "save theme, refresh rate, sort and hidden columns to nbdtop.conf",
                   footerKeys: "", footerLabel: ""),
        KeyBinding(keys: [.character("?"), .character("h"), .function(1)], action: .help,
                   description: "show or hide this help", footerKeys: "?", footerLabel: "help"),
    ]

    /// What a dashboard over a proxy offers: its clients choose their connections, so
    /// there are no lanes to add or drop and nothing to pause; what only changes the view
    /// (selection, sorting, freeze, theme, refresh, saved settings) stays.
    public static let proxyActions: Set<KeyAction> = [.selectUp, .selectDown, .sortColumn, .invertSort, .freezeDisplay,
                                                      .cycleTheme, .slowerRefresh, .fasterRefresh, .saveSettings, .quit, .help]

    /// The table for a dashboard over a copy, or over a proxy (`proxy`): only `proxyActions`.
    public static func bindings(attached: Bool, proxy: Bool) -> [KeyBinding] {
        guard proxy else { return bindings(attached: attached) }
        return bindings(attached: attached).filter { proxyActions.contains($0.action) }.map { binding in
            var shown = binding
            if binding.action == .quit && !attached { shown.description = "quit (asks y/n; y stops the proxy and closes its clients)" }
            return shown
        }
    }

    /// The action bound to a key, if any.
    public static func action(for key: Key) -> KeyAction? {
        bindings.first { $0.keys.contains(key) }?.action
    }
}
