/// How many colours a terminal can show, as the dashboard uses them.
public enum ColorDepth: Int, Sendable, Comparable, CaseIterable {
    /// No colour: attributes only (also what `NO_COLOR` asks for).
    case monochrome = 0
    case eight = 8
    case sixteen = 16
    /// The xterm 256-colour palette. Also used on 24-bit terminals, because ncurses colour
    /// pairs are limited and the palette is close enough for a dashboard.
    case palette256 = 256

    public static func < (lhs: ColorDepth, rhs: ColorDepth) -> Bool { lhs.rawValue < rhs.rawValue }

    /// The depth for a terminal that reports `colors` colours (ncurses `COLORS`), whether it
    /// has colour at all, and the environment (`NO_COLOR` set and non-empty → monochrome;
    /// `COLORTERM=truecolor` or `24bit` → 256 when the terminal has at least 256).
    public static func detect(colors: Int, hasColors: Bool, environment: [String: String]) -> ColorDepth {
        if let noColor = environment["NO_COLOR"], !noColor.isEmpty { return .monochrome }
        guard hasColors else { return .monochrome }
        let colorTerm = environment["COLORTERM"]?.lowercased() ?? ""
        if colorTerm == "truecolor" || colorTerm == "24bit", colors >= 256 { return .palette256 }
        if colors >= 256 { return .palette256 }
        if colors >= 16 { return .sixteen }
        if colors >= 8 { return .eight }
        return .monochrome
    }
}
