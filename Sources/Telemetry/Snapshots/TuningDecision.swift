/// One decision of the auto-tuner: what it changed (or why it holds), the settings before
/// and after, the rates it compared, and why, for the `auto` event and the dashboard.
public struct TuningDecision: Sendable, Equatable {
    public enum Action: String, Sendable, Equatable {
        /// One more lane, to see whether it raises the rate (or a lane dropped to see that
        /// is given back).
        case addLane = "add_lane"
        /// The last lane added is taken back, as it did not raise the rate enough; or one
        /// lane fewer, to see whether fewer copy as fast (the starting count was too many).
        case dropLane = "drop_lane"
        /// Larger requests, to see whether they raise the rate.
        case growRequestSize = "grow_request_size"
        /// Back to the smaller requests: the larger ones did not raise the rate enough.
        case shrinkRequestSize = "shrink_request_size"
        /// Nothing more to try now: the settings stay until the next probe.
        case hold
        /// A user added or dropped a lane: lanes are no longer tuned.
        case manual
        /// Lanes are tuned again (the dashboard's key, or the control command `auto`).
        case resume
    }

    public var action: Action
    public var lanesBefore: Int
    public var lanesAfter: Int
    public var requestSizeBefore: UInt64
    public var requestSizeAfter: UInt64
    /// The rate of the setting compared against, when there was one.
    public var baselineBytesPerSecond: Double?
    /// The rate just measured, when there was one.
    public var measuredBytesPerSecond: Double?
    public var reason: String

    public init(action: Action, lanesBefore: Int, lanesAfter: Int, requestSizeBefore: UInt64, requestSizeAfter: UInt64,
                baselineBytesPerSecond: Double? = nil, measuredBytesPerSecond: Double? = nil, reason: String) {
        self.action = action
        self.lanesBefore = lanesBefore
        self.lanesAfter = lanesAfter
        self.requestSizeBefore = requestSizeBefore
        self.requestSizeAfter = requestSizeAfter
        self.baselineBytesPerSecond = baselineBytesPerSecond
        self.measuredBytesPerSecond = measuredBytesPerSecond
        self.reason = reason
    }
}

/// How the lane count is chosen: by the tuner, by the user after a `+` or `-`, or fixed by
/// `-C N` (or by endpoints that allow one connection).
public enum LaneMode: String, Sendable, Equatable {
    case auto, manual, fixed
}

/// What the tuner is doing, for the dashboard header and `sample` lines.
public struct TuningStatus: Sendable, Equatable {
    public var laneMode: LaneMode
    /// Whether the request size is tuned (`--request-size auto`).
    public var requestSizeIsAuto: Bool
    /// Bytes per READ/WRITE handed out now.
    public var requestSize: UInt64
    /// The last decision in words, once there was one.
    public var lastDecision: String?

    public init(laneMode: LaneMode, requestSizeIsAuto: Bool, requestSize: UInt64, lastDecision: String? = nil) {
        self.laneMode = laneMode
        self.requestSizeIsAuto = requestSizeIsAuto
        self.requestSize = requestSize
        self.lastDecision = lastDecision
    }
}
