import NIOCore
/// How to copy: the knobs of `nbdtop copy`, with nbdcopy's defaults where it has them.
public struct CopyOptions: Sendable {
    /// Lanes to start with (`-C`); capped by what both endpoints allow.
    public var connections = 4
    /// Tune the lane count while copying (`-C auto`), starting from `connections`.
    public var autoLanes = false
    /// The most lanes auto-tuning opens (`--max-connections`), within the endpoints' limit.
    public var maximumAutoLanes = 16
    /// The cores this copy may use (NIO's count: CPU affinity and cgroup quotas), for the
    /// tuner's one lane a core on a server that runs here too.
    public var cores = System.coreCount
    /// Tune the request size while copying (`--request-size auto`), from 256 KiB.
    public var autoRequestSize = false
    /// Requests in flight per lane (`-R`).
    public var requestsPerLane = 64
    /// Bytes per READ/WRITE (`--request-size`), aligned to both endpoints' block sizes.
    public var requestSize: UInt64 = 256 << 10
    /// Zero-detection block size in bytes (`-S`); 0 turns scanning off.
    public var sparseGranularity: UInt64 = 4096
    /// Keep zeroed ranges allocated (`--allocated`: WRITE_ZEROES with NO_HOLE).
    public var allocated = false
    /// The destination already reads as zero (`--destination-is-zero`): skip zero ranges.
    public var destinationIsZero = false
    /// Ask the source which ranges are zero (`--no-extents` turns it off).
    public var useExtents = true
    /// Flush the destination at the end (`--no-flush` turns it off).
    public var flush = true
    /// How often a request the server failed is tried again, on any lane (`--retries`).
    public var retries = 0
    /// Fixed stall threshold (`--stall-threshold`); nil is adaptive.
    public var stallThreshold: Duration?
    /// Fixed slow-request threshold (`--slow-threshold`); nil is adaptive.
    public var slowThreshold: Duration?
    /// How much of the source one block status request asks about.
    public var extentsWindow: UInt64 = 1 << 30
    /// Bytes of data in flight per lane at most (`--queue-size`, as nbdcopy); one request
    /// always fits, and a zero request counts as a request, not as its length.
    public var queueSize: UInt64 = 16 << 20
    /// How long a lane whose connection broke keeps trying to re-open it (`--reconnect`);
    /// nil: a broken connection fails its lane at once.
    public var reconnect: Duration?
    /// With `reconnect`: flush the destination after this many bytes were written...
    public var checkpointBytes: UInt64 = 1 << 30
    /// ...or after this much time, whichever comes first (`--checkpoint`).
    public var checkpointInterval: Duration = .seconds(30)

    public init() {}
}
