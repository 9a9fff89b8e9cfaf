/// Figures for people: `1.2 GiB`, `850.0 MiB/s`, `1:02:03`.
enum Units {
    private static let binaryUnits = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]

    /// Bytes with a binary unit and one decimal (none for plain bytes).
    static func bytes(_ value: Double) -> String {
        var scaled = value
        var unit = 0
        while scaled >= 1024, unit < binaryUnits.count - 1 {
            scaled /= 1024
            unit += 1
        }
        if unit == 0 { return "\(Int(scaled)) B" }
        return "\(oneDecimal(scaled)) \(binaryUnits[unit])"
    }

    static func bytes(_ value: UInt64) -> String { bytes(Double(value)) }

    static func rate(_ bytesPerSecond: Double) -> String { bytes(bytesPerSecond) + "/s" }

    /// `m:ss` under an hour, `h:mm:ss` above.
    static func clock(_ duration: Duration) -> String {
        let total = max(0, duration.components.seconds)
        let hours = total / 3600, minutes = total / 60 % 60, seconds = total % 60
        let paddedSeconds = seconds < 10 ? "0\(seconds)" : "\(seconds)"
        if hours > 0 {
            let paddedMinutes = minutes < 10 ? "0\(minutes)" : "\(minutes)"
            return "\(hours):\(paddedMinutes):\(paddedSeconds)"
        }
        return "\(minutes):\(paddedSeconds)"
    }

    static func oneDecimal(_ value: Double) -> String {
        let tenths = Int((value * 10).rounded())
        return "\(tenths / 10).\(tenths % 10)"
    }

    /// Parses `256K`, `4M`, `1G`, `512` (bytes) into bytes.
    static func parseSize(_ text: String) -> UInt64? {
        guard let last = text.last else { return nil }
        let multipliers: [Character: UInt64] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40]
        if let multiplier = multipliers[Character(last.uppercased())] {
            var number = String(text.dropLast())
            if number.hasSuffix("i") { number.removeLast() }
            guard let value = UInt64(number), value <= UInt64.max / multiplier else { return nil }
            return value * multiplier
        }
        let digits = text.hasSuffix("B") || text.hasSuffix("b") ? String(text.dropLast()) : text
        return UInt64(digits)
    }

    /// Parses `200ms`, `1.5s`, `5m`, `2h`, `2` (seconds) into a duration.
    static func parseDuration(_ text: String) -> Duration? {
        let units: [(suffix: String, seconds: Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
        let unit = units.first { text.hasSuffix($0.suffix) }
        let number = text.dropLast(unit?.suffix.count ?? 0)
        guard let value = Double(number), value >= 0, value.isFinite, value < 1e9 else { return nil }
        return .milliseconds(Int64((value * (unit?.seconds ?? 1) * 1000).rounded()))
    }

    /// A size as it would be typed: `16M`, `1G`, `4096`.
    static func sizeText(_ bytes: UInt64) -> String {
        for (suffix, shift) in [("T", 40), ("G", 30), ("M", 20), ("K", 10)] where bytes >= 1 << shift && bytes % (1 << shift) == 0 {
            return "\(bytes >> shift)\(suffix)"
        }
        return "\(bytes)"
    }

    /// A duration as it would be typed: `250ms`, `30s`, `5m`.
    static func durationText(_ duration: Duration) -> String {
        let milliseconds = duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
        if milliseconds % 60_000 == 0 && milliseconds > 0 { return "\(milliseconds / 60_000)m" }
        if milliseconds % 1000 == 0 { return "\(milliseconds / 1000)s" }
        return "\(milliseconds)ms"
    }
}
