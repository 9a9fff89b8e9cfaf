import ArgumentParser
import Control

/// `--stats-json`, `--interval` and `--metrics`, shared by `copy` and `proxy`: where a
/// running transfer's telemetry goes, and how often it is sampled.
struct RecordingOptions: ParsableArguments {
    @Option(name: .customLong("stats-json"), help: "Write JSON lines of events and samples to PATH (- for stdout).")
    var statsJSON: String?

    @Option(help: ArgumentHelp("Time between samples for --stats-json, --metrics and copy's --progress, at least 100ms (e.g. 1s, 250ms).",
                               valueName: "duration"))
    var interval = TimeSpan(.seconds(1))

    @Option(help: ArgumentHelp("Serve Prometheus metrics at http://ADDR:PORT/metrics (a proxy has a series per client); PORT alone listens on loopback.",
                               valueName: "addr:port"))
    var metrics: MetricsAddress?

    /// The shortest interval, the same as a control client may ask for.
    static let shortestInterval: Duration = .milliseconds(ControlCommand.intervalRange.lowerBound)

    func validate() throws {
        guard interval.duration >= Self.shortestInterval else {
            throw ValidationError("--interval \(Units.durationText(interval.duration)) must be at least \(Units.durationText(Self.shortestInterval))")
        }
    }

    /// `--stats-json -`: the JSON lines take stdout.
    var writesToStdout: Bool { statsJSON == "-" }
}
