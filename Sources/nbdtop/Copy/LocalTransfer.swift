import Dashboard
import NBDCopy
import Telemetry

/// The dashboard's source for a copy in this process: its engine, and the events the
/// session keeps for the dashboard.
final class LocalTransfer: TransferSource {
    private let engine: CopyEngine
    let events: EventBuffer
    private let ended: SessionFlag
    private let startTime: ContinuousClock.Instant
    /// Lines of its own (a refused drop) waiting for `drainNotes`.
    private var pending: [TransferNote] = []

    /// `ended` is set once the engine's run has returned.
    init(engine: CopyEngine, events: EventBuffer, ended: SessionFlag, startTime: ContinuousClock.Instant) {
        self.engine = engine
        self.events = events
        self.ended = ended
        self.startTime = startTime
    }

    var hasEnded: Bool { ended.flag.load(ordering: .acquiring) }

    func snapshot() async -> CopySnapshot { await engine.snapshot() }

    func drainNotes() -> [TransferNote] {
        defer { pending = [] }
        return pending + events.drain().map { TransferNote.event($0.0, at: $0.1) }
    }

    func addLane() {
        Task { [engine] in _ = try? await engine.addLane() }
    }

    func dropLane(id: Int?) {
        if engine.dropLane(id: id) == nil {
            pending.append(.text("cannot drop: the last lane stays", severity: .warning, at: ContinuousClock.now - startTime))
        }
    }

    func resumeAutoLanes() {
        if !engine.resumeAutoLanes() {
            pending.append(.text(CopyControlTarget.lanesAreFixed, severity: .warning, at: ContinuousClock.now - startTime))
        }
    }

    func setPaused(_ paused: Bool) { engine.setPaused(paused) }

    func stop() { engine.stop() }

    /// The engine is asked for a snapshot at each frame; nothing to tell it.
    func refreshIntervalChanged(to interval: Duration) {}
}
