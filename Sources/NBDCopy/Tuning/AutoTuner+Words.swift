/// How the tuner puts rates, sizes and times into words: the reasons of its decisions,
/// which the `auto` events and the dashboard header show.
extension AutoTuner {
    static func joined(_ prefix: String?, _ text: String) -> String {
        prefix.map { "\($0); \(text)" } ?? text
    }

    static func rate(_ bytesPerSecond: Double) -> String {
        let megabytes = bytesPerSecond / 1e6
        return megabytes >= 100 ? "\(Int(megabytes.rounded())) MB/s" : "\((megabytes * 10).rounded() / 10) MB/s"
    }

    static func percent(_ fraction: Double) -> String {
        let value = Int((fraction * 100).rounded())
        return value > 0 ? "+\(value)%" : "\(value)%"
    }

    /// A fraction as a plain percentage, unsigned: "3%".
    static func share(_ fraction: Double) -> String {
        "\(Int((fraction * 100).rounded()))%"
    }

    static func milliseconds(_ duration: Duration) -> String {
        let value = duration.seconds * 1000
        return value >= 10 ? "\(Int(value.rounded())) ms" : "\((value * 10).rounded() / 10) ms"
    }

    static func size(_ bytes: UInt64) -> String {
        if bytes >= 1 << 20, bytes % (1 << 20) == 0 { return "\(bytes >> 20)M" }
        if bytes >= 1 << 10, bytes % (1 << 10) == 0 { return "\(bytes >> 10)K" }
        return "\(bytes)"
    }
}
