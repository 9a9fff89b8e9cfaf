/// Figures for people, without Foundation: `1.2 GiB`, `12.3 MiB/s`, `1:02:03`, `4.56ms`.
public enum Format {
    private static let binaryUnits = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]

    /// `value` with exactly `decimals` digits after the point (rounded half up).
    public static func fixed(_ value: Double, decimals: Int) -> String {
        guard value.isFinite else { return "-" }
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        let negative = value < 0
        let scaled = (abs(value) * scale).rounded()
        guard scaled < 9.0e18 else { return negative ? "-∞" : "∞" }
        let units = UInt64(scaled)
        let whole = units / UInt64(scale)
        var text = "\(whole)"
        if decimals > 0 {
            var fraction = "\(units % UInt64(scale))"
            while fraction.count < decimals { fraction = "0" + fraction }
            text += "." + fraction
        }
        return negative ? "-" + text : text
    }

    /// Bytes with a binary unit and one decimal (none for plain bytes): `1.2 GiB`.
    public static func bytes(_ value: Double, separator: String = " ") -> String {
        var scaled = max(0, value)
        var unit = 0
        while scaled >= 1024, unit < binaryUnits.count - 1 {
            scaled /= 1024
            unit += 1
        }
        if unit == 0 { return "\(Int(scaled))\(separator)B" }
        if scaled >= 999.95 { return "\(fixed(scaled, decimals: 0))\(separator)\(binaryUnits[unit])" }
        return "\(fixed(scaled, decimals: 1))\(separator)\(binaryUnits[unit])"
    }

    public static func bytes(_ value: UInt64, separator: String = " ") -> String { bytes(Double(value), separator: separator) }

    /// `12.3 MiB/s`.
    public static func rate(_ bytesPerSecond: Double) -> String { bytes(bytesPerSecond) + "/s" }

    /// `12.3MiB/s`, at most 10 columns, for table cells.
    public static func compactRate(_ bytesPerSecond: Double) -> String { bytes(bytesPerSecond, separator: "") + "/s" }

    /// `m:ss` under an hour, `h:mm:ss` above.
    public static func clock(_ duration: Duration) -> String {
        let total = max(0, duration.components.seconds)
        let hours = total / 3600, minutes = total / 60 % 60, seconds = total % 60
        let paddedSeconds = seconds < 10 ? "0\(seconds)" : "\(seconds)"
        if hours > 0 {
            return "\(hours):\(minutes < 10 ? "0" : "")\(minutes):\(paddedSeconds)"
        }
        return "\(minutes):\(paddedSeconds)"
    }

    /// A latency or age in at most 6 columns: `0.12ms`, `12.3ms`, `123ms`, `1.23s`, `12.3s`,
    /// `123s`, `17m`, `2h`.
    public static func shortDuration(_ duration: Duration) -> String {
        let seconds = Self.seconds(duration)
        let milliseconds = seconds * 1000
        if milliseconds < 9.995 { return fixed(milliseconds, decimals: 2) + "ms" }
        if milliseconds < 99.95 { return fixed(milliseconds, decimals: 1) + "ms" }
        if milliseconds < 999.5 { return fixed(milliseconds, decimals: 0) + "ms" }
        if seconds < 9.995 { return fixed(seconds, decimals: 2) + "s" }
        if seconds < 99.95 { return fixed(seconds, decimals: 1) + "s" }
        if seconds < 999.5 { return fixed(seconds, decimals: 0) + "s" }
        if seconds < 3600 * 10 && seconds < 60 * 999 { return "\(Int(seconds / 60))m" }
        return "\(Int(seconds / 3600))h"
    }

    /// `42.1%`.
    public static func percent(_ fraction: Double) -> String {
        fixed(min(max(fraction, 0), 1) * 100, decimals: 1) + "%"
    }

    /// A duration in seconds as a Double.
    public static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}
