import Telemetry

/// The connection table's order, htop-style: a column to sort by and a direction.
/// Rows stay grouped by side; ties keep lane order.
public struct TableSort: Sendable, Equatable {
    /// The columns rows can be sorted by, in the order the sort key steps through them.
    public enum Column: String, Sendable, CaseIterable {
        case lane, rate, inflight, p50, p99, oldest, stalls, errors

        /// The table column that shows the sort marker.
        var tableColumn: TableColumn {
            switch self {
            case .lane: return .id
            case .rate: return .rate
            case .inflight: return .inFlight
            case .p50: return .p50
            case .p99: return .p99
            case .oldest: return .oldest
            case .stalls: return .stall
            case .errors: return .errors
            }
        }

        /// The figure compared; nil (unknown) sorts as the smallest.
        func value(_ connection: ConnectionSnapshot) -> Double {
            switch self {
            case .lane: return Double(connection.laneID)
            case .rate: return connection.bytesPerSecond
            case .inflight: return Double(connection.inFlight)
            case .p50: return connection.latencyP50.map(Format.seconds) ?? -1
            case .p99: return connection.latencyP99.map(Format.seconds) ?? -1
            case .oldest: return connection.oldestInFlight.map(Format.seconds) ?? -1
            case .stalls: return Double(connection.stallEpisodes) + (connection.stalled ? 1e9 : 0)
            case .errors: return Double(connection.errors)
            }
        }
    }

    public var column: Column
    /// Largest first.
    public var descending: Bool

    public init(column: Column = .lane, descending: Bool = false) {
        self.column = column
        self.descending = descending
    }

    /// The next column; lane order goes up, every figure largest first, as top does.
    public mutating func selectNextColumn() {
        let all = Column.allCases
        column = all[((all.firstIndex(of: column) ?? 0) + 1) % all.count]
        descending = column != .lane
    }

    public mutating func invert() {
        descending.toggle()
    }

    /// `connections` in this order (a stable sort, ties by lane id).
    public func ordered(_ connections: [ConnectionSnapshot]) -> [ConnectionSnapshot] {
        connections.sorted { left, right in
            let a = column.value(left), b = column.value(right)
            if a != b { return descending ? a > b : a < b }
            return left.laneID < right.laneID
        }
    }

    /// `rate largest first`, for the event pane.
    public var description: String { "\(column.rawValue) \(descending ? "largest first" : "smallest first")" }
}

extension DashboardState {
    /// The sides the table shows: both when the destination has NBD connections, else only
    /// the source, one row per lane (the destination's write latency as a column).
    public func sidesShown(in snapshot: CopySnapshot) -> [ConnectionSide] {
        snapshot.destinationIsNBD ? [.source, .destination] : [.source]
    }

    /// The connections the table shows, in its order: grouped by side, each group in `sort` order.
    public func tableRows(in snapshot: CopySnapshot) -> [ConnectionSnapshot] {
        sidesShown(in: snapshot).flatMap { side in sort.ordered(snapshot.connections.filter { $0.side == side }) }
    }
}
