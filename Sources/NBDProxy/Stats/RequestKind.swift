import NBD

/// The kinds of request the proxy counts separately.
public enum RequestKind: String, Sendable, CaseIterable {
    case read, write, zero, trim, flush
    case blockStatus = "block_status"
    case cache
    /// A command type the protocol does not define.
    case other

    init(_ type: NBDCommandType?) {
        switch type {
        case .read: self = .read
        case .write: self = .write
        case .writeZeroes: self = .zero
        case .trim: self = .trim
        case .flush: self = .flush
        case .blockStatus: self = .blockStatus
        case .cache: self = .cache
        case .disconnect, nil: self = .other
        }
    }
}

/// Requests and bytes of one kind.
public struct KindTotals: Sendable, Equatable {
    /// Requests answered.
    public var requests: UInt64 = 0
    /// Bytes covered by the requests answered successfully (for READ and WRITE, the data moved).
    public var bytes: UInt64 = 0
    /// Requests the server failed.
    public var errors: UInt64 = 0
    /// Median and 99th percentile round trip of this kind's successful requests over the
    /// recent window (as for a connection); nil when none came in it.
    public var latencyP50: Duration?
    public var latencyP99: Duration?

    public init() {}
}
