import Telemetry

/// Names one connection: its lane and side. Selection is kept by id, not by row, so it
/// stays on the same connection as rows come and go.
public struct ConnectionID: Sendable, Hashable {
    public var laneID: Int
    public var side: ConnectionSide

    public init(laneID: Int, side: ConnectionSide) {
        self.laneID = laneID
        self.side = side
    }

    public init(_ connection: ConnectionSnapshot) {
        self.init(laneID: connection.laneID, side: connection.side)
    }
}

extension CopySnapshot {
    /// Connections in table order: every source connection by lane id, then every
    /// destination connection.
    public var connectionsInTableOrder: [ConnectionSnapshot] {
        let bySide = { (side: ConnectionSide) in
            connections.filter { $0.side == side }.sorted { $0.laneID < $1.laneID }
        }
        return bySide(.source) + bySide(.destination)
    }
}
