/// The connection table's columns and how wide each one is for a given width.
enum TableColumn: Sendable, Equatable {
    case id, state, rate, history, inFlight, p50, p99, oldest, stall, slow, errors
    case bytes, held, retries
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
        case .p50, .p99, .oldest: return 6
        case .stall: return 12
        case .errors: return 3
        case .slow: return 4
        case .bytes: return 9
        case .held, .retries: return 5
        case .client: return 18
        }
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
    /// that order); when wide, `bytes`, `held` and `retry` come in.
    /// `withClient`: a client column after the id (a proxy's table).
    init(width: Int, withClient: Bool = false) {
        var columns: [TableColumn] = [.id, .state, .rate, .history, .inFlight, .p50, .p99, .oldest, .stall, .slow, .errors]
        if withClient { columns.insert(.client, at: 1) }
        func used(_ set: [TableColumn]) -> Int { set.reduce(0) { $0 + $1.width } + set.count - 1 }
        for dropped in [TableColumn.slow, .oldest, .p50, .errors] where used(columns) + Self.minimumHistory > width {
            columns.removeAll { $0 == dropped }
        }
        for extra in [TableColumn.bytes, .held, .retries] {
            let candidate = columns + [extra]
            if width - used(candidate) >= Self.historyWithExtras { columns = candidate }
        }
        self.columns = columns
        historyWidth = min(Self.maximumHistory, max(0, width - used(columns)))
    }

    /// The width of a column in this plan.
    func width(of column: TableColumn) -> Int { column == .history ? historyWidth : column.width }
}
