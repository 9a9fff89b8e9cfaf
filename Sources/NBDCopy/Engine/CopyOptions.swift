/// How to copy: the knobs of `nbdtop copy`, with nbdcopy's defaults where it has them.
public struct CopyOptions: Sendable {
    /// Lanes to start with (`-C`); capped by what both endpoints allow.
    public var connections = 4
    /// Tune the lane count while copying (`-C auto`), starting from `connections`.
    public var autoLanes = false
    /// The most lanes auto-tuning opens (`--max-connections`), within the endpoints' limit.
    public var maximumAutoLanes = 16
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

/// Why a copy did not complete.
public enum CopyError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The endpoints do not fit together (sizes, read-only destination): usage-like, but exit 1.
    case incompatible(String)
    /// A request failed for good; the message names the endpoint, offset and error.
    case failed(String)
    /// Every lane failed; the last one's reason.
    case noLanesLeft(String)
    /// The user stopped the copy (Ctrl-C).
    case interrupted

    public var description: String {
        switch self {
        case .incompatible(let message), .failed(let message): return message
        case .noLanesLeft(let reason): return "every connection failed; the last: \(reason)"
        case .interrupted: return "interrupted"
        }
    }
}
