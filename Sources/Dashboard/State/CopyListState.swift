/// The top-like list of running copies (`nbdtop` alone, or `nbdtop attach` when several
/// run): its rows, the selection, and its keys.
public struct CopyListState: Sendable {
    /// One running copy: its pid and the line that describes it (as `nbdtop ls` prints it).
    public struct Entry: Sendable, Equatable {
        public var pid: Int32
        public var line: String

        public init(pid: Int32, line: String) {
            self.pid = pid
            self.line = line
        }
    }

    /// What a key asks the program to do.
    public enum Command: Sendable, Equatable {
        case attach(pid: Int32)
        case quit
    }

    /// The list's keys, for dispatch and its footer: `↑↓` select, Enter attaches, `q` quits.
    public static let keys: [(keys: [Key], footerKeys: String, footerLabel: String)] = [
        ([.up, .character("k"), .down, .character("j")], "↑↓", "select"),
        ([.enter], "Enter", "attach"),
        ([.character("q"), .function(10)], "q", "quit"),
    ]

    public private(set) var entries: [Entry] = []
    /// The selected copy; the selection follows its pid while the list refreshes.
    public private(set) var selectedPID: Int32?
    /// The list has been read at least once (until then it says so instead of "none").
    public private(set) var loaded = false

    public init() {}

    /// Replaces the rows; keeps the selected copy if it still runs, else selects the first.
    public mutating func update(_ entries: [Entry]) {
        self.entries = entries
        loaded = true
        if !entries.contains(where: { $0.pid == selectedPID }) { selectedPID = entries.first?.pid }
    }

    /// The row of the selected copy.
    public var selectedIndex: Int? { entries.firstIndex { $0.pid == selectedPID } }

    /// Handles one key press: moves the selection, or returns what to do.
    public mutating func handle(_ key: Key) -> Command? {
        switch key {
        case .up, .character("k"): move(by: -1)
        case .down, .character("j"): move(by: 1)
        case .enter: return selectedPID.map { .attach(pid: $0) }
        case .character("q"), .function(10): return .quit
        default: break
        }
        return nil
    }

    private mutating func move(by step: Int) {
        guard !entries.isEmpty else { return }
        let index = min(max(0, (selectedIndex ?? 0) + step), entries.count - 1)
        selectedPID = entries[index].pid
    }
}
