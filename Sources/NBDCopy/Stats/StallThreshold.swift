/// How long the oldest request may wait before its connection counts as stalled (DESIGN.md §4).
///
/// Either the `--stall-threshold` given, or adaptive: eight times the recent median
/// round trip, never below 50 ms. Before any reply there is no median to judge by, so an
/// adaptive threshold detects nothing yet: a pipeline that is only filling up (every
/// request sent, none answered) is not a stall. The median walks the
/// latency histogram, so on the hot path it is recomputed at most once per
/// `medianRefreshNanoseconds` and only when new samples arrived; `refresh(from:force:)`
/// with `force` recomputes it at once.
struct StallThreshold {
    /// The adaptive threshold in multiples of the recent median round trip.
    static let medianMultiple: UInt64 = 8
    /// The lowest adaptive threshold: 50 ms.
    static let floorNanoseconds: UInt64 = 50_000_000
    /// How stale the cached median may get while samples keep coming: 100 ms.
    static let medianRefreshNanoseconds: UInt64 = 100_000_000

    /// The threshold given explicitly; nil means adaptive.
    let explicitNanoseconds: UInt64?
    /// The current threshold.
    private(set) var nanoseconds: UInt64
    /// The latency revision and time the adaptive threshold was computed from.
    private var computedFromRevision: UInt64?
    private var computedAtElapsedNanoseconds: UInt64 = 0

    init(explicit: Duration?) {
        explicitNanoseconds = explicit.map(Self.nanoseconds(of:))
        nanoseconds = explicitNanoseconds ?? .max
    }

    /// The lowest value the threshold can take: a request younger than this cannot be stalled.
    var lowestPossibleNanoseconds: UInt64 { explicitNanoseconds ?? Self.floorNanoseconds }

    /// Recomputes the adaptive threshold from `latency` if it changed, at most once per
    /// refresh interval unless `force`.
    mutating func refresh(from latency: LatencyWindow, elapsedNanoseconds: UInt64, force: Bool) {
        guard explicitNanoseconds == nil, computedFromRevision != latency.revision else { return }
        if !force, computedFromRevision != nil, elapsedNanoseconds >= computedAtElapsedNanoseconds,
           elapsedNanoseconds - computedAtElapsedNanoseconds < Self.medianRefreshNanoseconds {
            return
        }
        if let median = latency.medianNanoseconds() {
            let (scaled, overflow) = median.multipliedReportingOverflow(by: Self.medianMultiple)
            nanoseconds = max(Self.floorNanoseconds, overflow ? .max : scaled)
        } else {
            nanoseconds = .max
        }
        computedFromRevision = latency.revision
        computedAtElapsedNanoseconds = elapsedNanoseconds
    }

    /// `duration` in whole nanoseconds, negative as zero, saturating at `UInt64.max`.
    static func nanoseconds(of duration: Duration) -> UInt64 {
        let (seconds, attoseconds) = duration.components
        guard seconds >= 0, !(seconds == 0 && attoseconds < 0) else { return 0 }
        let (whole, overflow) = UInt64(seconds).multipliedReportingOverflow(by: 1_000_000_000)
        let (total, carry) = whole.addingReportingOverflow(UInt64(max(0, attoseconds) / 1_000_000_000))
        return overflow || carry ? .max : total
    }
}
