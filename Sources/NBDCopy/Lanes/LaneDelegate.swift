import Telemetry
/// What a lane tells the engine. Called on the lane's event loop.
protocol LaneDelegate: AnyObject, Sendable {
    /// The planner has nothing more and the lane has nothing in flight.
    func laneBecameIdle(_ laneID: Int)
    /// An idle lane got work again (ranges came back to the planner).
    func laneBecameBusy(_ laneID: Int)
    /// The lane drained and closed its connections; `final` are its last figures.
    func laneClosed(_ laneID: Int, final: [ConnectionSnapshot])
    /// A connection failed; the lane gave its work back.
    func laneFailed(_ laneID: Int, reason: String, final: [ConnectionSnapshot])
    /// A request failed for good (after its retries).
    func laneHitFatalError(_ message: String)
    func laneReported(_ event: CopyEvent)
}
