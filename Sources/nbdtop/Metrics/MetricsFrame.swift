import NBDCopy
import Telemetry

/// One moment of a transfer as the metrics endpoint publishes it: the copy's global figures
/// when there is a copy, and every connection with the labels that tell it apart.
///
/// The exporter knows nothing of where frames come from: a copy makes them from its
/// snapshots (`init(copy:)`); a relay can label its connections its own way (a `client`).
struct MetricsFrame: Sendable {
    /// One connection's figures and its labels, such as `lane` and `side`.
    struct Connection: Sendable {
        var labels: [(String, String)]
        var figures: ConnectionSnapshot
    }

    /// The whole copy's figures; nil for a transfer that is not a copy.
    var copy: CopySnapshot?
    var connections: [Connection]

    init(copy: CopySnapshot?, connections: [Connection]) {
        self.copy = copy
        self.connections = connections
    }

    /// A copy's snapshot, its connections labelled by lane and side. Lanes that ended stay in
    /// the snapshot with their last figures, so their series stay until the copy ends.
    init(copy snapshot: CopySnapshot) {
        self.copy = snapshot
        self.connections = snapshot.connections.map {
            Connection(labels: [("lane", String($0.laneID)), ("side", $0.side.rawValue)], figures: $0)
        }
    }
}
