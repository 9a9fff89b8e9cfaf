/// Requests in flight against `--requests`: `12 ██▌ ` (count, then a small bar).
enum InFlightBar {
    /// The count right-aligned in 3 columns, a space, and a bar of `barWidth` cells:
    /// the filled part and the empty rest.
    static func parts(count: Int, capacity: Int, barWidth: Int, glyphs: Glyphs) -> (count: String, filled: String, empty: String) {
        let fraction = capacity > 0 ? Double(count) / Double(capacity) : 0
        var bar = ProgressBar.bar(fraction: fraction, width: barWidth, glyphs: glyphs)
        // Anything in flight shows at least a sliver.
        if count > 0, bar.filled.isEmpty, barWidth > 0 {
            bar = (String(glyphs.eighths[0]), String(repeating: String(glyphs.barEmpty), count: barWidth - 1))
        }
        return (TextFitting.pad(String(count), to: 3, alignRight: true), bar.filled, bar.empty)
    }
}
