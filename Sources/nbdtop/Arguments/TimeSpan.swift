import ArgumentParser

/// A duration option's value (`200ms`, `1.5s`, `30s`, `5m`, `2h`; a bare number is seconds),
/// parsed once by the argument parser.
struct TimeSpan: ExpressibleByArgument, Sendable, Equatable {
    var duration: Duration

    init(_ duration: Duration) { self.duration = duration }

    init?(argument: String) {
        guard let duration = Units.parseDuration(argument) else { return nil }
        self.duration = duration
    }

    var defaultValueDescription: String { Units.durationText(duration) }
}
