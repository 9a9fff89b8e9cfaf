/// The connection table's columns and how wide each one is for a given width.
enum TableColumn: Sendable, Hashable {
    case id, state, rate, history, inFlight, p50, p99, oldest, stall, slow, errors
    case bytes, held, retries
    /// The destination's p50, when lanes share one row.
    case writeLatency
    /// Who is at the other end (a proxy's client: command and pid, or address).
    case client

    var title: String {
        switch self {
        case .id: return "  id"
        case .state: return "state"
        case .rate: return "rate"
        case .history: return "rate, last 60 s"
        case .inFlight: return "in flight"
        case .p50: return "p50"
        case .p99: return "p99"
        case .oldest: return "oldest"
        case .stall: return "stalls  time"
        case .slow: return "slow"
        case .errors: return "err"
        case .bytes: return "bytes"
        case .held: return "held"
        case .retries: return "retry"
        case .writeLatency: return "write"
        case .client: return "client"
        }
    }

    /// Fixed width; the history column's is decided by the plan.
    var width: Int {
        switch self {
        case .id: return 4
        case .state: return 6
        case .rate: return 10
        case .history: return 0
        case .inFlight: return 9
        case .p50, .p99, .oldest, .writeLatency: return 6
        case .stall: return 12
        case .errors: return 3
        case .slow: return 4
        case .bytes: return 9
        case .held, .retries: return 5
        case .client: return 18
        }
    }

    /// The column's name in `nbdtop.conf`'s `hidden_columns`.
    var configName: String {
        switch self {
        case .id: return "id"
        case .state: return "state"
        case .rate: return "rate"
        case .history: return "history"
        case .inFlight: return "inflight"
        case .p50: return "p50"
        case .p99: return "p99"
        case .oldest: return "oldest"
        case .stall: return "stalls"
        case .slow: return "slow"
        case .errors: return "errors"
        case .bytes: return "bytes"
        case .held: return "held"
        case .retries: return "retries"
        case .writeLatency: return "write"
        case .client: return "client"
        }
    }

    /// Every column but the lane id can be hidden.
    static let hideable: [TableColumn] = [.state, .rate, .history, .inFlight, .p50, .p99, .oldest, .stall, .slow, .errors,
                                          .bytes, .held, .retries, .writeLatency, .client]

    init?(configName: String) {
        guard let column = Self.hideable.first(where: { $0.configName == configName }) else { return nil }
        self = column
    }

    var alignRight: Bool {
        switch self {
        case .state, .history, .inFlight, .stall, .client: return false
        default: return true
        }
    }
}

/// The columns shown at one width, with the history column's width.
struct TablePlan: Equatable {
    var columns: [TableColumn]
    var historyWidth: Int

    static let minimumHistory = 6
    static let maximumHistory = 60
    /// Extras are shown only while the history keeps at least this many columns.
    static let historyWithExtras = 30

    /// Essential columns first; when too narrow, `slow`, `oldest`, `p50` and `errors` go (in
    /// that order); when wide, `bytes`, `held` and `retry` come in. `writeLatency` adds the
    /// destination's p50 after p99 (lanes shown one row each); `withClient`, a client
    /// column after the id (a proxy's table). `hidden` columns never show (`nbdtop.conf`).
    init(width: Int, writeLatency: Bool = false, withClient: Bool = false, hidden: Set<TableColumn> = []) {
        var columns: [TableColumn] = [.id, .state, .rate, .history, .inFlight, .p50, .p99, .oldest, .stall, .slow, .errors]
        if writeLatency { columns.insert(.writeLatency, at: 7) }
        if withClient { columns.insert(.client, at: 1) }
        columns.removeAll { hidden.contains($0) }
        func used(_ set: [TableColumn]) -> Int { set.reduce(0) { $0 + $1.width } + set.count - 1 }
        for dropped in [TableColumn.slow, .oldest, .p50, .errors] where used(columns) + Self.minimumHistory > width {
            columns.removeAll { $0 == dropped }
        }
        // The write column takes its room from the history, not from the extras: a table of
        // lanes has half the rows, and the bytes column is what tells lanes apart.
        let writeRoom = writeLatency ? TableColumn.writeLatency.width + 1 : 0
        for extra in [TableColumn.bytes, .held, .retries] where !hidden.contains(extra) {
            let candidate = columns + [extra]
            if width - used(candidate) + writeRoom >= Self.historyWithExtras { columns = candidate }
        }
        self.columns = columns
        historyWidth = min(Self.maximumHistory, max(0, width - used(columns)))
    }

    /// The width of a column in this plan.
    func width(of column: TableColumn) -> Int { column == .history ? historyWidth : column.width }
}
