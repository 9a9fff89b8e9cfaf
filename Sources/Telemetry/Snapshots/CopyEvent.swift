/// Something that happened during a copy, for the event log and JSON lines.
public enum CopyEvent: Sendable, Equatable {
    case laneAdded(laneID: Int)
    case laneDropped(laneID: Int)
    case laneFailed(laneID: Int, reason: String)
    /// A request to add a lane was refused, and why.
    case laneRefused(reason: String)
    /// A connection entered a head-of-line stall: nothing completed for longer than its
    /// threshold; `held` requests wait behind the oldest, which is `oldestAge` old.
    case stall(laneID: Int, side: ConnectionSide, oldestAge: Duration, held: Int)
    /// A request took far longer than its connection's median while the connection kept
    /// moving: slow, but nothing was blocked behind it.
    case slowRequest(laneID: Int, side: ConnectionSide, operation: RequestOperation, offset: UInt64, length: UInt64,
                     latency: Duration)
    /// A failed request goes back to be tried again; `side` is where it failed.
    case retry(laneID: Int, side: ConnectionSide, offset: UInt64, length: UInt64, attempt: Int, error: String)
    /// A lane's connection broke; try `attempt` to open it again follows (`--reconnect`).
    case laneReconnecting(laneID: Int, side: ConnectionSide, attempt: Int, error: String)
    /// A lane's connection is open again.
    case laneReconnected(laneID: Int, side: ConnectionSide)
    case paused(Bool)
    /// The auto-tuner changed the lanes or the request size, or holds, and why.
    case auto(TuningDecision)
}

/// The kind of an NBD (or file) request, for events.
public enum RequestOperation: String, Sendable {
    case read, write, zero, flush
    case blockStatus = "block_status"
}
