@testable import Telemetry
import Testing
@testable import Dashboard

@Suite("Colour depth and mapping")
struct ColorMappingTests {
    func mapped(_ hex: String, _ depth: ColorDepth) -> ThemeColor {
        ColorMapper(depth: depth).map(ThemeColor(parsing: hex)!)
    }

    @Test("24-bit colours map to the nearest of the 256-colour palette", arguments: [
        ("#ff0000", 196), ("#ffffff", 231), ("#000000", 16), ("#808080", 244), ("#5f87af", 67), ("#005f87", 24), ("#eeeeee", 255),
    ])
    func palette256(hex: String, index: UInt8) {
        #expect(mapped(hex, .palette256) == .indexed(index))
    }

    @Test("to the nearest of 16 ANSI colours", arguments: [
        ("#ff0000", 9), ("#800000", 1), ("#00ff00", 10), ("#ffffff", 15), ("#808080", 8), ("#000000", 0), ("#0000ee", 4), ("#d0d0d0", 7),
    ])
    func sixteen(hex: String, index: UInt8) {
        #expect(mapped(hex, .sixteen) == .indexed(index))
    }

    @Test("to the nearest of 8 colours, greys only to black or white", arguments: [
        ("#ff0000", 1), ("#00ff00", 2), ("#0000ff", 4), ("#ffff00", 3), ("#ffffff", 7), ("#303030", 0), ("#808080", 7), ("#00d7d7", 6),
    ])
    func eight(hex: String, index: UInt8) {
        #expect(mapped(hex, .eight) == .indexed(index))
    }

    @Test("ANSI names and palette indexes map by depth")
    func namesAndIndexes() {
        #expect(ColorMapper(depth: .palette256).map(.named(12)) == .indexed(12))
        #expect(ColorMapper(depth: .sixteen).map(.named(12)) == .indexed(12))
        #expect(ColorMapper(depth: .eight).map(.named(12)) == .indexed(4))
        #expect(ColorMapper(depth: .sixteen).map(.indexed(196)) == .indexed(9))
        #expect(ColorMapper(depth: .eight).map(.indexed(9)) == .indexed(1))
        #expect(ColorMapper(depth: .palette256).map(.terminalDefault) == .terminalDefault)
        #expect(ColorMapper(depth: .monochrome).map(.rgb(red: 1, green: 2, blue: 3)) == .terminalDefault)
    }

    @Test("terminal capability picks the depth", arguments: [
        (256, true, [String: String](), ColorDepth.palette256), (16777216, true, ["COLORTERM": "truecolor"], .palette256),
        (88, true, [:], .sixteen), (16, true, [:], .sixteen), (8, true, [:], .eight), (2, true, [:], .monochrome),
        (256, false, [:], .monochrome), (256, true, ["NO_COLOR": "1"], .monochrome), (256, true, ["NO_COLOR": ""], .palette256),
    ])
    func detect(colors: Int, hasColors: Bool, environment: [String: String], depth: ColorDepth) {
        #expect(ColorDepth.detect(colors: colors, hasColors: hasColors, environment: environment) == depth)
    }

    @Test("NO_COLOR renders monochrome: no colour anywhere, roles kept apart by attributes")
    func noColor() {
        let depth = ColorDepth.detect(colors: 256, hasColors: true, environment: ["NO_COLOR": "yes"])
        let theme = Theme.default.mapped(to: depth)
        var state = Fixtures.state()
        state.selected = ConnectionID(laneID: 1, side: .destination)
        let grid = render(snapshot: Fixtures.snapshot(lanes: 2, stalledLane: 1, paused: true), state: state, theme: theme, size: (80, 24))
        for row in 0..<grid.rows {
            for column in 0..<grid.columns {
                #expect(grid[row, column].foreground == .terminalDefault && grid[row, column].background == .terminalDefault)
            }
        }
        #expect(grid[0, 1].attributes.contains(.reverse), "the title bar is reversed")
        #expect(theme[.selected].attributes.contains(.reverse))
        #expect(theme[.stall].attributes.isSuperset(of: [.bold, .reverse]))
    }

    @Test("a mapped theme holds only palette indexes or the default")
    func mappedThemeIsIndexed() {
        for depth in [ColorDepth.palette256, .sixteen, .eight] {
            let theme = Theme.default.mapped(to: depth)
            for role in ThemeRole.allCases {
                for colour in [theme[role].foreground, theme[role].background] {
                    switch colour {
                    case .indexed(let index): #expect(Int(index) < depth.rawValue)
                    case .terminalDefault: break
                    default: Issue.record("\(role) is \(colour) at \(depth)")
                    }
                }
            }
        }
    }
}
