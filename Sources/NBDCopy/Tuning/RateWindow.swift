/// The aggregate completion rate measured over consecutive ticks, and whether enough of
/// them agree to compare it with another setting's.
///
/// The mean is the bytes over the time of the whole window, not the mean of the ticks'
/// rates, so a tick that happened to catch one more large request does not tip it. The
/// window is *stable* once it has `minimumSamples` ticks and the standard error of their
/// mean is within `stableError` of it, or once it has `maximumSamples` ticks whatever
/// their spread (a server that never settles must still get an answer).
struct RateWindow: Sendable, Equatable {
    struct Limits: Sendable, Equatable {
        var minimumSamples = 5
        var maximumSamples = 15
        /// Standard error of the mean, as a fraction of the mean, that counts as stable.
        var stableError = 0.02
    }

    private(set) var samples: [Double] = []
    private var bytes = 0.0
    private var seconds = 0.0

    /// Adds one tick: its rate and how long it lasted.
    mutating func add(bytesPerSecond: Double, over tick: Duration) {
        let length = tick.seconds
        guard length > 0 else { return }
        samples.append(bytesPerSecond)
        bytes += bytesPerSecond * length
        seconds += length
    }

    /// Bytes per second over the window; 0 when empty.
    var bytesPerSecond: Double { seconds > 0 ? bytes / seconds : 0 }

    /// The standard error of the mean tick rate, as a fraction of the window's rate.
    var relativeError: Double {
        guard samples.count > 1, bytesPerSecond > 0 else { return .infinity }
        let mean = samples.reduce(0, +) / Double(samples.count)
        let variance = samples.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(samples.count - 1)
        return (variance / Double(samples.count)).squareRoot() / bytesPerSecond
    }

    func isStable(_ limits: Limits) -> Bool {
        if samples.count >= limits.maximumSamples { return true }
        return samples.count >= limits.minimumSamples && relativeError <= limits.stableError
    }
}

extension Duration {
    /// This duration in seconds, as a `Double`.
    var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
