/// Which side of a lane a connection belongs to.
public enum ConnectionSide: String, Sendable {
    case source = "src"
    case destination = "dst"
}

/// Where a connection is in its life.
public enum ConnectionState: String, Sendable {
    case connecting, active, reconnecting, draining, closed, failed
}

/// The figures of one connection at one moment, copied out of the engine.
public struct ConnectionSnapshot: Sendable, Equatable {
    /// The lane's id; a lane's source and destination connections share it.
    public var laneID: Int
    public var side: ConnectionSide
    public var state: ConnectionState
    /// Why the connection failed or was refused, when it did.
    public var failureReason: String?
    /// While reconnecting: the try under way, counted from 1.
    public var reconnectAttempt = 0
    /// Times the connection was opened again after it broke.
    public var reconnects = 0
    /// Bytes this connection completed (read or written) since it opened.
    public var bytes: UInt64
    /// Bytes completed per second over the last second.
    public var bytesPerSecond: Double
    /// Bytes per second for each of the last seconds, oldest first, at most 60.
    public var rateHistory: [Double]
    /// Requests sent and not yet answered.
    public var inFlight: Int
    public var inFlightBytes: UInt64
    /// Median and 99th percentile round trip over the recent window (the last 5 to 10 s of
    /// successful replies); nil when no reply arrived in that window, so also before any reply.
    public var latencyP50: Duration?
    public var latencyP99: Duration?
    /// Age of the oldest request in flight; nil when nothing is in flight.
    public var oldestInFlight: Duration?
    /// How long nothing may complete, with requests in flight, before the connection counts
    /// as stalled; nil while an adaptive threshold has no replies to judge by.
    public var stallThreshold: Duration?
    /// A request slower than this (less stalled time) is a slow request; nil likewise.
    public var slowThreshold: Duration?
    /// In a head-of-line stall now (see `StallDetector`).
    public var stalled: Bool
    /// Requests held behind the oldest one in the current stall; 0 when not stalled.
    public var held = 0
    /// Slow requests seen: far slower than this connection's median while it kept moving.
    public var slowRequests = 0
    public var stallEpisodes: Int
    /// Total time spent stalled, including the current episode.
    public var stalledTime: Duration
    /// Requests held behind a stalled request, summed over episodes.
    public var requestsHeldBehind: Int
    /// Requests that failed on this connection.
    public var errors: Int
    /// Requests retried after failing here.
    public var retries: Int
    /// Totals since the connection opened: requests by operation, errors by errno, round trips.
    public var tally = RequestTally()

    public init(laneID: Int, side: ConnectionSide, state: ConnectionState = .connecting) {
        self.laneID = laneID
        self.side = side
        self.state = state
        self.bytes = 0
        self.bytesPerSecond = 0
        self.rateHistory = []
        self.inFlight = 0
        self.inFlightBytes = 0
        self.stallThreshold = nil
        self.stalled = false
        self.stallEpisodes = 0
        self.stalledTime = .zero
        self.requestsHeldBehind = 0
        self.errors = 0
        self.retries = 0
    }
}
