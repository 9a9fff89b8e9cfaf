import Histogram

/// Round-trip times of the recent past, in two rotating 5-second windows.
///
/// Samples go to the current window and to a histogram of the current plus the previous
/// window, so percentiles are read straight from that one without merging. When a window
/// ends, the combined histogram becomes the old current window and the current one
/// starts empty; the percentiles thus cover between 5 and 10 seconds of the past.
/// Recording is O(1); a percentile or a rotation walks the histogram's buckets once.
public struct LatencyWindow {
    /// Length of one window.
    static let windowNanoseconds: UInt64 = 5_000_000_000
    /// Round trips longer than this (ten minutes) are recorded as this.
    static let highestTrackableMicroseconds: UInt64 = 600_000_000

    /// Samples of the running window.
    private var currentWindow: Histogram<UInt64>
    /// Samples of the running and the previous window.
    private var recentWindows: Histogram<UInt64>
    /// Number of the running window since the connection opened.
    private var currentWindowNumber: UInt64 = 0
    /// Changes whenever the samples that percentiles see change, for caching derived figures.
    private(set) var revision: UInt64 = 0

    public init() {
        currentWindow = Histogram<UInt64>(
            highestTrackableValue: Self.highestTrackableMicroseconds, numberOfSignificantValueDigits: .three)
        recentWindows = currentWindow
    }

    /// Whether there is no sample in the recent windows.
    var isEmpty: Bool { recentWindows.totalCount == 0 }

    /// Records a round trip of `latencyNanoseconds` that ended `elapsedNanoseconds` after the connection opened.
    public mutating func record(latencyNanoseconds: UInt64, elapsedNanoseconds: UInt64) {
        advance(elapsedNanoseconds: elapsedNanoseconds)
        let microseconds = min(latencyNanoseconds / 1_000, Self.highestTrackableMicroseconds)
        let recorded = currentWindow.record(microseconds) && recentWindows.record(microseconds)
        assert(recorded, "a clamped latency always fits the histogram")
        revision &+= 1
    }

    /// Ends the windows that are over at `elapsedNanoseconds` after the connection opened.
    public mutating func advance(elapsedNanoseconds: UInt64) {
        let windowNumber = elapsedNanoseconds / Self.windowNanoseconds
        guard windowNumber > currentWindowNumber else { return }
        if windowNumber == currentWindowNumber + 1 {
            // The running window becomes the previous one: only its samples stay recent.
            swap(&currentWindow, &recentWindows)
            currentWindow.reset()
        } else {
            currentWindow.reset()
            recentWindows.reset()
        }
        currentWindowNumber = windowNumber
        revision &+= 1
    }

    /// The round trip at `percentile` (0...100) over the recent windows; nil when there is no sample.
    public func latency(atPercentile percentile: Double) -> Duration? {
        guard !isEmpty else { return nil }
        return .microseconds(recentWindows.valueAtPercentile(percentile))
    }

    /// The median round trip over the recent windows in nanoseconds; nil when there is no sample.
    func medianNanoseconds() -> UInt64? {
        guard !isEmpty else { return nil }
        return recentWindows.valueAtPercentile(50) * 1_000
    }
}
