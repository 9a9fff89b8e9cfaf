/// Bytes completed over the trailing second, counted in 100 ms buckets.
///
/// The window `(now - 1 s, now]` covers the current, partly elapsed bucket, the nine
/// before it, and the part of the tenth-oldest bucket still inside the window; that
/// last bucket is weighted by the fraction of it that is, as if its bytes were spread
/// evenly over it. Recording is O(1).
public struct TrailingRate: Sendable {
    /// Width of one bucket.
    static let bucketNanoseconds: UInt64 = 100_000_000
    /// Width of the window the rate is taken over.
    static let windowNanoseconds: UInt64 = 1_000_000_000
    private static let bucketsPerWindow = Int(windowNanoseconds / bucketNanoseconds)

    /// The current bucket, nine full ones and the partly covered oldest one.
    private var ring = BucketRing(slotCount: bucketsPerWindow + 1)

    public init() {}

    /// Counts `bytes` completed at `elapsedNanoseconds` since the connection opened.
    public mutating func record(bytes: UInt64, elapsedNanoseconds: UInt64) {
        ring.add(bytes, to: Self.bucket(of: elapsedNanoseconds))
    }

    /// Bytes per second over the second that ends at `elapsedNanoseconds`.
    public mutating func bytesPerSecond(elapsedNanoseconds: UInt64) -> Double {
        let bucket = Self.bucket(of: elapsedNanoseconds)
        ring.advance(to: bucket)
        let current = ring.currentBucket
        // A `now` older than the newest bucket reads as the start of that bucket.
        let intoCurrentNanoseconds = bucket == current
            ? elapsedNanoseconds - UInt64(current) * Self.bucketNanoseconds
            : 0
        var windowBytes = 0.0
        for back in 0..<Self.bucketsPerWindow {
            windowBytes += Double(ring.bytes(in: current - back))
        }
        let oldestCoveredFraction = 1.0 - Double(intoCurrentNanoseconds) / Double(Self.bucketNanoseconds)
        windowBytes += oldestCoveredFraction * Double(ring.bytes(in: current - Self.bucketsPerWindow))
        return windowBytes / (Double(Self.windowNanoseconds) / 1e9)
    }

    private static func bucket(of elapsedNanoseconds: UInt64) -> Int {
        Int(elapsedNanoseconds / bucketNanoseconds)
    }
}
