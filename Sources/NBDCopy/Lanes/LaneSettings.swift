/// The per-lane policy the engine derives from the options and both endpoints.
struct LaneSettings: Sendable {
    /// Work items in flight at most (`-R`, lower during the first look).
    var requests: RequestLimit
    /// Bytes in flight at most.
    var maximumBytes: UInt64
    /// Zero-scan granularity; 0 means no scan.
    var sparseGranularity: UInt64
    /// Zero ranges need no request: the destination already reads as zero.
    var skipZeroes: Bool
    /// The destination has a cheap zero operation.
    var destinationCanZero: Bool
    /// Zeroed ranges stay allocated.
    var allocate: Bool
    /// Zero requests must start and end on multiples of this (except at the image end).
    var destinationAlignment: UInt64
    /// A failed request is retried this many times.
    var retries: Int
    /// The largest write; also the size of the shared zero buffer.
    var requestSize: UInt64
    /// Fixed thresholds (`--stall-threshold`, `--slow-threshold`); nil is adaptive.
    var stallThreshold: Duration?
    var slowThreshold: Duration?
    /// The source is a pipe whose end we find by reading.
    var sourceIsStream: Bool
    /// How long a broken connection is tried again (`--reconnect`); nil: it fails the lane.
    var reconnect: Duration?
    /// Set when completed work must be remembered until a checkpoint FLUSH covers it: with
    /// `--reconnect`, on a destination that can flush and may come back.
    var checkpoints: CheckpointGeneration?
}
