/// The characters the dashboard draws with: Unicode blocks and box lines, or plain ASCII
/// for terminals whose locale is not UTF-8.
public struct Glyphs: Sendable, Equatable {
    /// Sparkline levels, lowest first (8 of them).
    public var sparkline: [Character]
    /// Horizontal bar fills, one eighth to a full cell (8 of them).
    public var eighths: [Character]
    /// The empty part of a bar.
    public var barEmpty: Character
    /// The stall marker.
    public var stall: Character
    /// Marks the selected row.
    public var selection: Character
    public var horizontal: Character
    public var vertical: Character
    public var topLeft: Character, topRight: Character, bottomLeft: Character, bottomRight: Character
    public var arrow: String
    public var ellipsis: String

    public static let unicode = Glyphs(
        sparkline: ["▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"],
        eighths: ["▏", "▎", "▍", "▌", "▋", "▊", "▉", "█"],
        barEmpty: "░", stall: "⚠", selection: ">", horizontal: "─", vertical: "│",
        topLeft: "┌", topRight: "┐", bottomLeft: "└", bottomRight: "┘", arrow: "→", ellipsis: "…")

    public static let ascii = Glyphs(
        sparkline: ["_", ".", ",", "-", "=", "+", "*", "#"],
        eighths: ["#", "#", "#", "#", "#", "#", "#", "#"],
        barEmpty: ".", stall: "!", selection: ">", horizontal: "-", vertical: "|",
        topLeft: "+", topRight: "+", bottomLeft: "+", bottomRight: "+", arrow: "->", ellipsis: "~")
}
