/// Bytes completed in each whole second since the connection opened, for the last 60 seconds.
///
/// Second `n` covers `[n s, n+1 s)` after the connection opened. Only seconds that have
/// fully elapsed are reported, so the newest value never reads low for being partial.
/// Recording is O(1).
struct RateHistory {
    /// Most whole seconds reported.
    static let maximumSeconds = 60
    private static let nanosecondsPerSecond: UInt64 = 1_000_000_000

    /// The running second plus the whole seconds before it.
    private var ring = BucketRing(slotCount: maximumSeconds + 1)

    /// Counts `bytes` completed at `elapsedNanoseconds` since the connection opened.
    mutating func record(bytes: UInt64, elapsedNanoseconds: UInt64) {
        ring.add(bytes, to: Self.second(of: elapsedNanoseconds))
    }

    /// Bytes per second for each whole second before `elapsedNanoseconds`, oldest first, at most 60.
    mutating func bytesPerSecond(elapsedNanoseconds: UInt64) -> [Double] {
        ring.advance(to: Self.second(of: elapsedNanoseconds))
        let running = ring.currentBucket
        let first = max(0, running - Self.maximumSeconds)
        return (first..<running).map { Double(ring.bytes(in: $0)) }
    }

    private static func second(of elapsedNanoseconds: UInt64) -> Int {
        Int(elapsedNanoseconds / nanosecondsPerSecond)
    }
}
