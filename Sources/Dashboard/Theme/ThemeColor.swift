/// A colour as a theme names it, or as it was mapped for a terminal.
public enum ThemeColor: Sendable, Hashable, CustomStringConvertible {
    /// The terminal's own foreground or background.
    case terminalDefault
    /// One of the 16 ANSI colours, by palette index 0 to 15 (the terminal's palette decides
    /// the exact shade).
    case named(UInt8)
    /// A 24-bit colour.
    case rgb(red: UInt8, green: UInt8, blue: UInt8)
    /// An entry of the terminal's palette, 0 to 255: what `ColorMapper` produces.
    case indexed(UInt8)

    /// The 16 ANSI colour names, in palette order; `bright-` names are 8 to 15.
    public static let ansiNames = [
        "black", "red", "green", "yellow", "blue", "magenta", "cyan", "white",
        "bright-black", "bright-red", "bright-green", "bright-yellow",
        "bright-blue", "bright-magenta", "bright-cyan", "bright-white",
    ]

    /// Parses `#rrggbb`, `#rgb`, an ANSI name (`red`, `bright-blue`, `gray`/`grey` for
    /// bright-black), `default`, or a palette index `0`…`255`. Nil when it is none of them.
    public init?(parsing text: String) {
        let name = text.lowercased()
        if name == "default" || name == "none" {
            self = .terminalDefault
            return
        }
        if name == "gray" || name == "grey" {
            self = .named(8)
            return
        }
        if let index = Self.ansiNames.firstIndex(of: name) {
            self = .named(UInt8(index))
            return
        }
        if name.first == "#" {
            let digits = Array(name.dropFirst())
            guard digits.allSatisfy(\.isHexDigit) else { return nil }
            func component(_ characters: ArraySlice<Character>) -> UInt8? { UInt8(String(characters), radix: 16) }
            if digits.count == 6, let red = component(digits[0..<2]), let green = component(digits[2..<4]),
               let blue = component(digits[4..<6]) {
                self = .rgb(red: red, green: green, blue: blue)
                return
            }
            if digits.count == 3, let red = component([digits[0], digits[0]][...]),
               let green = component([digits[1], digits[1]][...]), let blue = component([digits[2], digits[2]][...]) {
                self = .rgb(red: red, green: green, blue: blue)
                return
            }
            return nil
        }
        if let index = UInt8(name) {
            self = .indexed(index)
            return
        }
        return nil
    }

    /// `#rrggbb`, the ANSI name, `default`, or the palette index.
    public var description: String {
        switch self {
        case .terminalDefault: return "default"
        case .named(let index): return Self.ansiNames[Int(index) % 16]
        case .indexed(let index): return "\(index)"
        case .rgb(let red, let green, let blue):
            func hex(_ value: UInt8) -> String {
                let digits = String(value, radix: 16)
                return digits.count == 1 ? "0" + digits : digits
            }
            return "#" + hex(red) + hex(green) + hex(blue)
        }
    }
}
