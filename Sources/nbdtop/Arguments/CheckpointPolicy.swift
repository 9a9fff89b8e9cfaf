import ArgumentParser

/// `--checkpoint`: how often a copy with `--reconnect` flushes the destination, as a size,
/// a duration, or both (`1G`, `30s`, `1G,30s`); whichever comes first triggers a flush.
struct CheckpointPolicy: ExpressibleByArgument, Sendable, Equatable {
    var bytes: UInt64
    var interval: Duration

    static let standard = CheckpointPolicy(bytes: 1 << 30, interval: .seconds(30))

    init(bytes: UInt64, interval: Duration) {
        self.bytes = bytes
        self.interval = interval
    }

    /// A part ending in `s` is a duration (`30s`, `500ms`); anything else is a size. A part
    /// left out stays at its default.
    init?(argument: String) {
        var policy = Self.standard
        let parts = argument.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        guard (1...2).contains(parts.count) else { return nil }
        var sawSize = false, sawInterval = false
        for part in parts {
            if part.hasSuffix("s") {
                guard !sawInterval, let interval = Units.parseDuration(part), interval > .zero else { return nil }
                policy.interval = interval
                sawInterval = true
            } else {
                guard !sawSize, let bytes = Units.parseSize(part), bytes > 0 else { return nil }
                policy.bytes = bytes
                sawSize = true
            }
        }
        self = policy
    }

    var defaultValueDescription: String { "\(Units.sizeText(bytes)),\(Units.durationText(interval))" }
}
