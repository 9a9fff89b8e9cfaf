/// Reads the `.theme` format: one `role = style` per line, `#` comments.
///
/// A style is an optional foreground colour, optionally `on` a background colour, then any
/// of the attributes `bold`, `dim`, `underline`, `reverse`, `italic`. Colours are
/// `#rrggbb`, `#rgb`, ANSI names (`red`, `bright-blue`), a palette index or `default`.
public enum ThemeParser {
    /// A parsed theme and what was ignored in it.
    public struct Parsed: Sendable {
        public var theme: Theme
        public var warnings: [ThemeWarning]
    }

    /// Parses theme text; `file` names it in errors and warnings and gives the theme its
    /// name (without directories and `.theme`). Throws on the first bad line.
    public static func parse(_ text: String, file: String) throws(ThemeError) -> Parsed {
        var styles: [ThemeRole: Style] = [:]
        var setOnLine: [ThemeRole: Int] = [:]
        var warnings: [ThemeWarning] = []
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        for (offset, rawLine) in lines.enumerated() {
            let number = offset + 1
            let line = stripComment(String(rawLine))
            if line.allSatisfy(\.isWhitespace) { continue }
            guard let equals = line.firstIndex(of: "=") else {
                throw ThemeError(file: file, line: number, message: "expected 'role = colour', found '\(trimmed(line))'")
            }
            let key = trimmed(String(line[..<equals]))
            let value = trimmed(String(line[line.index(after: equals)...]))
            guard !key.isEmpty else { throw ThemeError(file: file, line: number, message: "missing role name before '='") }
            guard !value.isEmpty else { throw ThemeError(file: file, line: number, message: "missing colour for '\(key)'") }
            let style: Style
            do {
                style = try parseStyle(value)
            } catch {
                throw ThemeError(file: file, line: number, message: "\(key): \(error.message)")
            }
            guard let role = ThemeRole(rawValue: key.lowercased().replacingDashes()) else {
                warnings.append(ThemeWarning(file: file, line: number, message: "unknown role '\(key)' ignored"))
                continue
            }
            if let earlier = setOnLine[role] {
                warnings.append(ThemeWarning(file: file, line: number, message: "'\(key)' already set on line \(earlier); this line wins"))
            }
            styles[role] = style
            setOnLine[role] = number
        }
        return Parsed(theme: Theme(name: themeName(file), styles: styles), warnings: warnings)
    }

    /// Why a style text is not one.
    struct StyleError: Error { var message: String }

    /// Parses `fg [on bg] [attributes...]`.
    static func parseStyle(_ value: String) throws(StyleError) -> Style {
        var style = Style()
        var foregroundSet = false
        var tokens = value.split(whereSeparator: \.isWhitespace).map(String.init)[...]
        while let token = tokens.popFirst() {
            let word = token.lowercased()
            if word == "on" {
                guard let colourText = tokens.popFirst() else { throw StyleError(message: "'on' needs a background colour") }
                guard let colour = ThemeColor(parsing: colourText) else { throw StyleError(message: badColour(colourText)) }
                style.background = colour
            } else if let attribute = CellAttributes.names.first(where: { $0.name == word }) {
                style.attributes.insert(attribute.attribute)
            } else if let colour = ThemeColor(parsing: token) {
                guard !foregroundSet else { throw StyleError(message: "two foreground colours; write 'fg on bg' for a background") }
                style.foreground = colour
                foregroundSet = true
            } else {
                throw StyleError(message: badColour(token))
            }
        }
        return style
    }

    private static func badColour(_ text: String) -> String {
        if text.hasPrefix("#") { return "bad colour '\(text)': expected #rrggbb or #rgb" }
        return "unknown colour or attribute '\(text)' (colours: #rrggbb, a name such as red or bright-blue, 0-255, default; attributes: bold dim underline reverse italic)"
    }

    /// The line without a comment: `#` at the start, or ` #` followed by a space or the end.
    private static func stripComment(_ line: String) -> String {
        if trimmed(line).hasPrefix("#") { return "" }
        var previous: Character = " "
        var index = line.startIndex
        while index < line.endIndex {
            let character = line[index]
            let next = line.index(after: index)
            if character == "#", previous.isWhitespace, next == line.endIndex || line[next].isWhitespace {
                return String(line[..<index])
            }
            previous = character
            index = next
        }
        return line
    }

    private static func trimmed(_ text: String) -> String {
        var slice = Substring(text)
        while slice.first?.isWhitespace == true { slice.removeFirst() }
        while slice.last?.isWhitespace == true { slice.removeLast() }
        return String(slice)
    }

    /// `Themes/light.theme` → `light`.
    static func themeName(_ file: String) -> String {
        let base = file.split(separator: "/").last.map(String.init) ?? file
        return base.hasSuffix(".theme") ? String(base.dropLast(6)) : base
    }
}

extension String {
    fileprivate func replacingDashes() -> String {
        String(map { $0 == "-" ? "_" : $0 })
    }
}
