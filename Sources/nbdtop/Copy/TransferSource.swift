import Dashboard
import NBDCopy
import Telemetry

/// Where the dashboard's figures come from and where its commands go: the engine of this
/// process (`LocalTransfer`) or a copy's control socket (`ControlStream`). One
/// `DashboardSession` loop draws both, so keys, help and footer stay one table.
///
/// Every method is called from the dashboard loop only, and none of them blocks.
protocol TransferSource: AnyObject {
    /// The copy has ended: the dashboard closes.
    var hasEnded: Bool { get }
    /// The copy's figures now (or as of the last sample received).
    func snapshot() async -> CopySnapshot
    /// Events and the source's own lines since the last call, oldest first.
    func drainNotes() -> [TransferNote]
    func addLane()
    /// Drops lane `id`, or the newest when nil; a refusal comes back as a note.
    func dropLane(id: Int?)
    /// Lanes are tuned again after a `+` or `-`; a refusal comes back as a note.
    func resumeAutoLanes()
    func setPaused(_ paused: Bool)
    /// Stops the copy cleanly (exit 130).
    func stop()
    /// The dashboard now refreshes every `interval`.
    func refreshIntervalChanged(to interval: Duration)
    /// Who each connection's peer is, by lane id, for a client column (a proxy's clients).
    var connectionLabels: [Int: String] { get }
}

extension TransferSource {
    /// A copy's connections have no peers to name.
    var connectionLabels: [Int: String] { [:] }
}

/// One line for the event pane: an engine event, or a line of the program's own.
enum TransferNote {
    case event(CopyEvent, at: Duration)
    case text(String, severity: EventSeverity, at: Duration)
}
