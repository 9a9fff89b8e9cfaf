/// Text attributes of a cell, independent of colour.
public struct CellAttributes: OptionSet, Sendable, Hashable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let bold = CellAttributes(rawValue: 1 << 0)
    public static let dim = CellAttributes(rawValue: 1 << 1)
    public static let underline = CellAttributes(rawValue: 1 << 2)
    public static let reverse = CellAttributes(rawValue: 1 << 3)
    public static let italic = CellAttributes(rawValue: 1 << 4)

    /// Attribute names as theme files spell them.
    public static let names: [(name: String, attribute: CellAttributes)] = [
        ("bold", .bold), ("dim", .dim), ("underline", .underline), ("reverse", .reverse), ("italic", .italic),
    ]
}

/// How text looks: colours and attributes.
public struct Style: Sendable, Hashable {
    public var foreground: ThemeColor
    public var background: ThemeColor
    public var attributes: CellAttributes

    public init(foreground: ThemeColor = .terminalDefault, background: ThemeColor = .terminalDefault,
                attributes: CellAttributes = []) {
        self.foreground = foreground
        self.background = background
        self.attributes = attributes
    }

    /// The terminal's own colours, no attributes.
    public static let plain = Style()

    /// This style with more attributes.
    public func adding(_ more: CellAttributes) -> Style {
        var copy = self
        copy.attributes.formUnion(more)
        return copy
    }

    /// This style's colours and attributes, with the background of `other` when this one
    /// has none (so text drawn on a highlighted row keeps the highlight).
    public func over(_ other: Style) -> Style {
        var copy = self
        if copy.background == .terminalDefault { copy.background = other.background }
        copy.attributes.formUnion(other.attributes)
        return copy
    }
}

/// One character cell of the screen.
public struct Cell: Sendable, Hashable {
    /// The character shown; for the right half of a double-width character, a space that
    /// `isContinuation` marks as covered.
    public var character: Character
    public var foreground: ThemeColor
    public var background: ThemeColor
    public var attributes: CellAttributes
    /// This cell is covered by the double-width character to its left.
    public var isContinuation: Bool

    public init(character: Character = " ", style: Style = .plain, isContinuation: Bool = false) {
        self.character = character
        self.foreground = style.foreground
        self.background = style.background
        self.attributes = style.attributes
        self.isContinuation = isContinuation
    }

    /// The cell's colours and attributes as a style.
    public var style: Style { Style(foreground: foreground, background: background, attributes: attributes) }

    /// An empty cell in the terminal's colours.
    public static let blank = Cell()
}
