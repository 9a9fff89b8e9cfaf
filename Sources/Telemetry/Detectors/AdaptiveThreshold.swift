/// A threshold that is either given or follows a connection's own recent behaviour:
/// `multiple` times the median of a window of samples, never below `floor`.
///
/// Before the window has any sample an adaptive threshold is infinite: with nothing to
/// judge by, nothing is flagged. The median walks the window's histogram, so on the hot
/// path it is recomputed at most once per `medianRefreshNanoseconds` and only when new
/// samples arrived; `refresh(from:force:)` with `force` recomputes it at once.
struct AdaptiveThreshold {
    /// How stale the cached median may get while samples keep coming: 100 ms.
    static let medianRefreshNanoseconds: UInt64 = 100_000_000

    /// The threshold given explicitly; nil means adaptive.
    let explicitNanoseconds: UInt64?
    let multiple: UInt64
    let floorNanoseconds: UInt64
    /// The current threshold; `UInt64.max` while adaptive with no sample.
    private(set) var nanoseconds: UInt64
    /// The window revision and time the adaptive threshold was computed from.
    private var computedFromRevision: UInt64?
    private var computedAtElapsedNanoseconds: UInt64 = 0

    init(explicit: Duration?, multiple: UInt64, floor: Duration) {
        explicitNanoseconds = explicit.map(Self.nanoseconds(of:))
        self.multiple = multiple
        floorNanoseconds = Self.nanoseconds(of: floor)
        nanoseconds = explicitNanoseconds ?? .max
    }

    /// The lowest value the threshold can take: nothing shorter can pass it.
    var lowestPossibleNanoseconds: UInt64 { explicitNanoseconds ?? floorNanoseconds }

    /// The threshold, or nil while an adaptive one has no sample to judge by.
    var duration: Duration? { nanoseconds == .max ? nil : .nanoseconds(Int64(clamping: nanoseconds)) }

    /// Recomputes the adaptive threshold from `window` if it changed, at most once per
    /// refresh interval unless `force`.
    mutating func refresh(from window: LatencyWindow, elapsedNanoseconds: UInt64, force: Bool) {
        guard explicitNanoseconds == nil, computedFromRevision != window.revision else { return }
        if !force, computedFromRevision != nil, elapsedNanoseconds >= computedAtElapsedNanoseconds,
           elapsedNanoseconds - computedAtElapsedNanoseconds < Self.medianRefreshNanoseconds {
            return
        }
        if let median = window.medianNanoseconds() {
            let (scaled, overflow) = median.multipliedReportingOverflow(by: multiple)
            nanoseconds = max(floorNanoseconds, overflow ? .max : scaled)
        } else {
            nanoseconds = .max
        }
        computedFromRevision = window.revision
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
