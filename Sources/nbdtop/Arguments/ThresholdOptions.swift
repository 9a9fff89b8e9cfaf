import ArgumentParser

/// `--stall-threshold` and `--slow-threshold`, shared by `copy` and `proxy`: fixed
/// thresholds for the telemetry definitions (docs/telemetry.md), adaptive when absent.
struct ThresholdOptions: ParsableArguments {
    @Option(name: .customLong("stall-threshold"),
            help: ArgumentHelp("A connection with requests in flight that completes nothing for this long is stalled (e.g. 200ms); adaptive by default.",
                               valueName: "duration"))
    var stallThreshold: TimeSpan?

    @Option(name: .customLong("slow-threshold"),
            help: ArgumentHelp("A request slower than this while its connection keeps moving is a slow request; adaptive by default.",
                               valueName: "duration"))
    var slowThreshold: TimeSpan?

    func validate() throws {
        for (name, threshold) in [("--stall-threshold", stallThreshold), ("--slow-threshold", slowThreshold)] {
            if let threshold, threshold.duration <= .zero {
                throw ValidationError("\(name) must be longer than 0, such as 200ms or 1s")
            }
        }
    }
}
