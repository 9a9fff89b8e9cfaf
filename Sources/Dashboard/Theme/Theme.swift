/// Styles for every role of the dashboard: what a `.theme` file describes.
///
/// A theme holds only the roles its file set; every other role inherits from the
/// compiled-in default theme.
public struct Theme: Sendable, Equatable {
    /// The theme's name: its file name without `.theme`.
    public var name: String
    /// The roles this theme sets itself.
    public var styles: [ThemeRole: Style]

    public init(name: String, styles: [ThemeRole: Style]) {
        self.name = name
        self.styles = styles
    }

    /// The style of a role: this theme's, else the default theme's.
    public subscript(role: ThemeRole) -> Style {
        if let style = styles[role] { return style }
        if let style = Theme.builtInStyles[role] { return style }
        return .plain
    }

    /// The compiled-in default theme (the same as `Themes/default.theme`).
    public static let `default` = Theme(name: "default", styles: builtInStyles)

    /// A theme without any colour: the default's attributes plus each role's fallback.
    public static let monochrome: Theme = Theme.default.mapped(to: .monochrome)

    private static let builtInStyles: [ThemeRole: Style] = {
        // The text is fixed and tested, so a parse failure is a programming error.
        guard let parsed = try? ThemeParser.parse(DefaultTheme.text, file: "default.theme", ) else {
            preconditionFailure("the compiled-in default theme does not parse")
        }
        return parsed.theme.styles
    }()

    /// Every role resolved (own or inherited) and every colour mapped to what a terminal
    /// of `depth` can show. Without colour (monochrome) and with only 8 colours, each role
    /// also gets its fallback attributes so nothing depends on colour alone.
    public func mapped(to depth: ColorDepth) -> Theme {
        let mapper = ColorMapper(depth: depth)
        var resolved: [ThemeRole: Style] = [:]
        for role in ThemeRole.allCases {
            var style = self[role]
            style.foreground = mapper.map(style.foreground)
            style.background = mapper.map(style.background)
            if depth == .monochrome || depth == .eight { style.attributes.formUnion(role.fallbackAttributes) }
            resolved[role] = style
        }
        return Theme(name: name, styles: resolved)
    }
}
