import Testing
@testable import Dashboard

@Suite("Theme files")
struct ThemeParsingTests {
    @Test("a good file sets colours, backgrounds and attributes; comments and blank lines are skipped")
    func goodFile() throws {
        let text = """
        # a comment
        header = white on #005f87 bold   # trailing comment

        rate = #0f0 underline
        sparkline-low = 67
        selected = reverse
        error = bright-red on default
        """
        let parsed = try ThemeParser.parse(text, file: "/tmp/mine.theme")
        #expect(parsed.warnings.isEmpty)
        #expect(parsed.theme.name == "mine")
        #expect(parsed.theme[.header] == Style(foreground: .named(7), background: .rgb(red: 0, green: 0x5f, blue: 0x87), attributes: .bold))
        #expect(parsed.theme[.rate] == Style(foreground: .rgb(red: 0, green: 255, blue: 0), attributes: .underline))
        #expect(parsed.theme[.sparklineLow] == Style(foreground: .indexed(67)))
        #expect(parsed.theme[.selected] == Style(attributes: .reverse))
        #expect(parsed.theme[.error] == Style(foreground: .named(9)))
    }

    @Test("roles the file leaves out inherit from the compiled-in default")
    func inherits() throws {
        let parsed = try ThemeParser.parse("rate = red\n", file: "partial.theme")
        #expect(parsed.theme[.rate] == Style(foreground: .named(1)))
        for role in ThemeRole.allCases where role != .rate {
            #expect(parsed.theme[role] == Theme.default[role], "\(role)")
        }
    }

    @Test("unknown and repeated roles are warnings naming file and line")
    func warnings() throws {
        let parsed = try ThemeParser.parse("rate = red\nsparkles = blue\nrate = green\n", file: "odd.theme")
        #expect(parsed.warnings.map(\.description) == [
            "odd.theme:2: warning: unknown role 'sparkles' ignored",
            "odd.theme:3: warning: 'rate' already set on line 1; this line wins",
        ])
        #expect(parsed.theme[.rate].foreground == .named(2))
    }

    @Test("bad lines are errors naming file and line", arguments: [
        ("rate red", 1, "expected 'role = colour'"),
        ("\n\nrate = gren", 3, "unknown colour or attribute 'gren'"),
        ("# x\nheader = #12345", 2, "bad colour '#12345'"),
        ("header = red blue", 1, "two foreground colours"),
        ("header = red on", 1, "'on' needs a background colour"),
        ("header =", 1, "missing colour for 'header'"),
        (" = red", 1, "missing role name"),
        ("rate = on #zzzzzz", 1, "bad colour '#zzzzzz'"),
    ])
    func errors(text: String, line: Int, message: String) {
        #expect {
            _ = try ThemeParser.parse(text, file: "Themes/broken.theme")
        } throws: { error in
            guard let error = error as? ThemeError else { return false }
            return error.file == "Themes/broken.theme" && error.line == line && error.message.contains(message)
                && error.description.hasPrefix("Themes/broken.theme:\(line): ")
        }
    }

    @Test("every shipped theme parses without warnings and sets every role", arguments: TestFiles.listThemes(TestFiles.themesDirectory))
    func shippedThemes(file: String) throws {
        let path = TestFiles.themesDirectory + "/" + file
        let loaded = try ThemeLocator(environment: [:], executablePath: nil).loadFile(path)
        #expect(loaded.warnings.isEmpty, "\(loaded.warnings)")
        #expect(Set(loaded.theme.styles.keys) == Set(ThemeRole.allCases), "\(file) leaves roles to the default")
    }

    @Test("the shipped files include default, mono, high-contrast and light")
    func shippedSet() {
        let names = TestFiles.listThemes(TestFiles.themesDirectory)
        for name in ["default.theme", "mono.theme", "high-contrast.theme", "light.theme"] { #expect(names.contains(name)) }
    }

    @Test("Themes/default.theme is the compiled-in default")
    func defaultMatches() throws {
        let loaded = try ThemeLocator(environment: [:], executablePath: nil).loadFile(TestFiles.themesDirectory + "/default.theme")
        #expect(loaded.theme.styles == Theme.default.styles)
        #expect(TestFiles.read(TestFiles.themesDirectory + "/default.theme") == DefaultTheme.text)
    }

    @Test("the mono theme uses no colour")
    func monoTheme() throws {
        let loaded = try ThemeLocator(environment: [:], executablePath: nil).loadFile(TestFiles.themesDirectory + "/mono.theme")
        for style in loaded.theme.styles.values {
            #expect(style.foreground == .terminalDefault && style.background == .terminalDefault)
        }
    }

    @Test("colour names and forms parse", arguments: [
        ("#ff8700", ThemeColor.rgb(red: 255, green: 135, blue: 0)), ("#F80", .rgb(red: 255, green: 136, blue: 0)),
        ("red", .named(1)), ("bright-blue", .named(12)), ("GREY", .named(8)), ("default", .terminalDefault), ("231", .indexed(231)),
    ])
    func colours(text: String, colour: ThemeColor) {
        #expect(ThemeColor(parsing: text) == colour)
    }

    @Test("not colours", arguments: ["#ff87", "256", "purple", "#ggggggg", ""])
    func notColours(text: String) {
        #expect(ThemeColor(parsing: text) == nil)
    }
}
