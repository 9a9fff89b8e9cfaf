/// How a copy ended: the error, if any, and what became of the final flush.
public struct CopyOutcome: Sendable, Equatable {
    public enum Flush: String, Sendable, Equatable {
        /// The destination acknowledged a FLUSH (or fsync returned) after every write.
        case acknowledged
        /// `--no-flush`.
        case notRequested
        /// The destination cannot flush (no FLUSH offered, `null:`, a pipe).
        case unsupported
        /// The copy ended before the final flush.
        case notReached
        /// The flush was sent and failed.
        case failed

        /// In words, for the summaries after a copy.
        public var summary: String {
            switch self {
            case .acknowledged: return "flushed"
            case .notRequested: return "not flushed (--no-flush)"
            case .unsupported: return "not flushed: the destination cannot flush"
            case .notReached: return "not flushed"
            case .failed: return "the flush failed"
            }
        }
    }

    public var error: CopyError?
    public var flush: Flush

    public init(error: CopyError?, flush: Flush) {
        self.error = error
        self.flush = flush
    }
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
