/// What the first answers say about a server: how long one request costs a connection,
/// and how that cost splits into a fixed part per request and a part per byte.
///
/// A lane keeps many requests in flight, so its completions are spaced by the server's
/// *service time* per request on that connection: `requestSize × lanes / rate`. On a
/// light server (null, a page-cached file, qemu-nbd) that is a fraction of a millisecond
/// at 256 KiB. When it is milliseconds, each request carries a cost of its own (a delay, a
/// serializing filter, a Python plugin, a remote source) and larger requests pay almost
/// in proportion; waiting for a slow climb through every rung wastes the seconds that
/// matter most on a short copy. Two service times at two sizes fit the line
/// `serviceTime(size) = perRequest + size / bytesPerSecond`, and the size worth using
/// follows from it: the smallest that spends at most `1 - efficiency` of each request's
/// time on the fixed part.
struct ServerShape: Sendable, Equatable {
    /// The fixed cost of one request on one connection.
    var perRequest: Duration
    /// One connection's rate for very large requests; infinite when the per-byte part was
    /// too small to measure.
    var bytesPerSecond: Double

    /// The service time per request of one lane, from an aggregate rate.
    static func serviceTime(requestSize: UInt64, lanes: Int, bytesPerSecond: Double) -> Duration? {
        guard bytesPerSecond > 0, lanes > 0 else { return nil }
        let seconds = Double(requestSize) * Double(lanes) / bytesPerSecond
        return .nanoseconds(Int64(min(seconds, 86_400) * 1e9))
    }

    /// Fits the line through two (request size, service time) points; nil when the points
    /// say there is no fixed cost per request (a bandwidth-capped server) or are unusable.
    init?(_ first: (requestSize: UInt64, serviceTime: Duration), _ second: (requestSize: UInt64, serviceTime: Duration)) {
        let s1 = Double(first.requestSize), s2 = Double(second.requestSize)
        let t1 = first.serviceTime.seconds, t2 = second.serviceTime.seconds
        guard s2 > s1, t1 > 0, t2 > 0 else { return nil }
        let perByte = (t2 - t1) / (s2 - s1)
        let fixed = (t1 * s2 - t2 * s1) / (s2 - s1)
        guard fixed > 0 else { return nil }
        perRequest = .nanoseconds(Int64(fixed * 1e9))
        bytesPerSecond = perByte > 0 ? 1 / perByte : .infinity
    }

    /// The smallest of `sizes` (ascending) at which the fixed part is at most
    /// `1 - efficiency` of a request's service time; the largest when none is.
    func requestSize(among sizes: [UInt64], efficiency: Double) -> UInt64 {
        guard let largest = sizes.last else { return 0 }
        guard bytesPerSecond.isFinite else { return largest }
        // fixed / (fixed + size / rate) <= 1 - efficiency  ⇔  size >= fixed × rate × e / (1 - e)
        let wanted = perRequest.seconds * bytesPerSecond * efficiency / (1 - efficiency)
        return sizes.first { Double($0) >= wanted } ?? largest
    }
}
