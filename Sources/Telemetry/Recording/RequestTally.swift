import NBD

/// Totals of one connection's answered requests since it opened: by operation, failures by
/// error number, and successful round trips in fixed buckets.
///
/// Unlike the recent-window figures (rate, p50, p99) these only grow, which is what an
/// exporter of counters and histograms needs (`--metrics`). Recording is O(buckets).
public struct RequestTally: Sendable, Equatable {
    /// Upper bounds of the round-trip buckets, smallest first; one more bucket holds the rest.
    public static let latencyBucketBounds: [Duration] = [
        .microseconds(100), .microseconds(250), .microseconds(500),
        .milliseconds(1), .microseconds(2_500), .milliseconds(5), .milliseconds(10), .milliseconds(25),
        .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
        .seconds(1), .milliseconds(2_500), .seconds(5), .seconds(10),
    ]
    private static let boundNanoseconds: [UInt64] = latencyBucketBounds.map {
        UInt64($0.components.seconds) * 1_000_000_000 + UInt64($0.components.attoseconds / 1_000_000_000)
    }

    /// Requests answered (successfully or not), per operation.
    public private(set) var requestsByOperation: [RequestOperation: Int] = [:]
    /// Failed requests per error number's name (`EIO`, ...); `none` when the failure had no number
    /// (a broken connection).
    public private(set) var errorsByErrno: [String: Int] = [:]
    /// Successful round trips per bucket (not cumulative): entry i is at most bound i and
    /// above bound i-1; the last entry is above every bound.
    public private(set) var latencyCounts: [Int]
    /// The sum of the round trips in each bucket, in nanoseconds.
    public private(set) var latencySumNanoseconds: [UInt64]

    public init() {
        latencyCounts = Array(repeating: 0, count: Self.latencyBucketBounds.count + 1)
        latencySumNanoseconds = Array(repeating: 0, count: Self.latencyBucketBounds.count + 1)
    }

    /// Counts one answered request; a successful one's round trip goes into its bucket.
    mutating func record(_ operation: RequestOperation, roundTripNanoseconds: UInt64, succeeded: Bool, errno: NBDErrno?) {
        requestsByOperation[operation, default: 0] += 1
        guard succeeded else {
            errorsByErrno[errno?.tallyName ?? "none", default: 0] += 1
            return
        }
        let bucket = Self.boundNanoseconds.firstIndex { roundTripNanoseconds <= $0 } ?? Self.boundNanoseconds.count
        latencyCounts[bucket] += 1
        latencySumNanoseconds[bucket] &+= roundTripNanoseconds
    }
}
