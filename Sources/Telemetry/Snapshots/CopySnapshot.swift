/// The whole copy at one moment: what the dashboard draws and `--stats-json` prints.
public struct CopySnapshot: Sendable {
    public var elapsed: Duration
    /// Image size; nil while a pipe source's end is unknown.
    public var bytesTotal: UInt64?
    /// Bytes the destination acknowledged, including zeroed and skipped ranges.
    public var bytesDone: UInt64
    /// Every byte below this offset is done (acknowledged by the destination).
    public var completedPrefix: UInt64
    /// Bytes made zero with zero requests (or written as zeroes).
    public var bytesZeroed: UInt64
    /// Bytes that needed no request (known zero on both sides).
    public var bytesSkipped: UInt64
    /// Completed bytes per second over about the last second.
    public var bytesPerSecond: Double
    /// Completed bytes per second since the start.
    public var averageBytesPerSecond: Double
    /// Time left at the current rate; nil when unknown.
    public var eta: Duration?
    /// Lanes open now, and the most the endpoints allow.
    public var lanes: Int
    public var maximumLanes: Int
    /// Why `maximumLanes` is what it is.
    public var laneLimitReason: String
    public var paused: Bool
    /// One entry per connection, lanes in id order, source before destination; lanes
    /// already closed or failed keep their last figures.
    public var connections: [ConnectionSnapshot]
    /// Whether the destination's connections are NBD connections; false for `null:`, a
    /// file or a pipe, whose "connections" are handles with nothing to show of their own.
    public var destinationIsNBD = true
    /// The busiest event loop thread's CPU use over about the last second, as a fraction
    /// of one core; nil when not measured.
    public var eventLoopCPU: Double?
    /// What limits the copy now; nil while there is too little history to judge by.
    public var bottleneck: Bottleneck?
    /// How lanes and the request size are chosen, and the tuner's last decision; nil when
    /// not known (an attached copy's older lines).
    public var tuning: TuningStatus?

    public init(elapsed: Duration = .zero, bytesTotal: UInt64? = nil, bytesDone: UInt64 = 0, completedPrefix: UInt64 = 0, bytesZeroed: UInt64 = 0,
                bytesSkipped: UInt64 = 0, bytesPerSecond: Double = 0, averageBytesPerSecond: Double = 0,
                eta: Duration? = nil, lanes: Int = 0, maximumLanes: Int = 1, laneLimitReason: String = "",
                paused: Bool = false, connections: [ConnectionSnapshot] = [], tuning: TuningStatus? = nil) {
        self.elapsed = elapsed
        self.bytesTotal = bytesTotal
        self.bytesDone = bytesDone
        self.completedPrefix = completedPrefix
        self.bytesZeroed = bytesZeroed
        self.bytesSkipped = bytesSkipped
        self.bytesPerSecond = bytesPerSecond
        self.averageBytesPerSecond = averageBytesPerSecond
        self.eta = eta
        self.lanes = lanes
        self.maximumLanes = maximumLanes
        self.laneLimitReason = laneLimitReason
        self.paused = paused
        self.connections = connections
        self.tuning = tuning
    }
}

/// How a copy that succeeded ended, for the summary.
public struct CopySummary: Sendable {
    public var snapshot: CopySnapshot
    public var flush: CopyOutcome.Flush
    /// The destination acknowledged a FLUSH (or fsync returned) after the last write.
    public var flushed: Bool { flush == .acknowledged }

    public init(snapshot: CopySnapshot, flush: CopyOutcome.Flush) {
        self.snapshot = snapshot
        self.flush = flush
    }
}
