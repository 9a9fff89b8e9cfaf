/// Maps theme colours to what a terminal of a given depth can show: the nearest entry of
/// the xterm 256-colour palette, of the 16 ANSI colours, or of the first 8; or nothing.
public struct ColorMapper: Sendable {
    public let depth: ColorDepth

    public init(depth: ColorDepth) {
        self.depth = depth
    }

    /// `.indexed(n)` for the terminal's palette, or `.terminalDefault` (always in monochrome).
    public func map(_ color: ThemeColor) -> ThemeColor {
        switch (depth, color) {
        case (.monochrome, _), (_, .terminalDefault):
            return .terminalDefault
        case (.palette256, .named(let index)), (.sixteen, .named(let index)):
            return .indexed(index % 16)
        case (.eight, .named(let index)):
            return .indexed(index % 8)
        case (.palette256, .indexed(let index)):
            return .indexed(index)
        case (.sixteen, .indexed(let index)) where index < 16, (.eight, .indexed(let index)) where index < 8:
            return .indexed(index)
        case (.eight, .indexed(let index)) where index < 16:
            return .indexed(index % 8)
        case (_, .indexed(let index)):
            let (red, green, blue) = Self.paletteRGB(index)
            return map(.rgb(red: red, green: green, blue: blue))
        case (.palette256, .rgb(let red, let green, let blue)):
            return .indexed(Self.nearest256(red: red, green: green, blue: blue))
        case (.sixteen, .rgb(let red, let green, let blue)):
            return .indexed(Self.nearestANSI(red: red, green: green, blue: blue, count: 16))
        case (.eight, .rgb(let red, let green, let blue)):
            return .indexed(Self.nearestANSI(red: red, green: green, blue: blue, count: 8))
        }
    }

    /// xterm's default values of the 16 ANSI colours.
    static let ansi16: [(UInt8, UInt8, UInt8)] = [
        (0, 0, 0), (205, 0, 0), (0, 205, 0), (205, 205, 0), (0, 0, 238), (205, 0, 205), (0, 205, 205), (229, 229, 229),
        (127, 127, 127), (255, 0, 0), (0, 255, 0), (255, 255, 0), (92, 92, 255), (255, 0, 255), (0, 255, 255), (255, 255, 255),
    ]

    /// The six levels of each axis of the 6×6×6 colour cube (palette 16 to 231).
    static let cubeLevels: [Int] = [0, 95, 135, 175, 215, 255]

    /// The RGB value of a 256-palette entry.
    static func paletteRGB(_ index: UInt8) -> (UInt8, UInt8, UInt8) {
        let value = Int(index)
        if value < 16 { return ansi16[value] }
        if value >= 232 {
            let level = UInt8(8 + 10 * (value - 232))
            return (level, level, level)
        }
        let cube = value - 16
        return (UInt8(cubeLevels[cube / 36]), UInt8(cubeLevels[cube / 6 % 6]), UInt8(cubeLevels[cube % 6]))
    }

    /// The nearest colour of the cube or the grey ramp (palette 16 to 255).
    static func nearest256(red: UInt8, green: UInt8, blue: UInt8) -> UInt8 {
        func nearestLevel(_ value: UInt8) -> Int {
            var best = 0
            for (index, level) in cubeLevels.enumerated() where abs(level - Int(value)) < abs(cubeLevels[best] - Int(value)) {
                best = index
            }
            return best
        }
        let cubeIndex = 16 + 36 * nearestLevel(red) + 6 * nearestLevel(green) + nearestLevel(blue)
        let average = (Int(red) + Int(green) + Int(blue)) / 3
        let greyStep = min(23, max(0, (average - 8 + 5) / 10))
        let greyIndex = 232 + greyStep
        let cubeDistance = distance(paletteRGB(UInt8(cubeIndex)), (red, green, blue))
        let greyDistance = distance(paletteRGB(UInt8(greyIndex)), (red, green, blue))
        return UInt8(greyDistance < cubeDistance ? greyIndex : cubeIndex)
    }

    /// The nearest of the first `count` ANSI colours. Greys (all channels within 40 of each
    /// other) map only to black, grey or white, never to a tinted colour.
    static func nearestANSI(red: UInt8, green: UInt8, blue: UInt8, count: Int) -> UInt8 {
        let channels = [Int(red), Int(green), Int(blue)]
        var candidates = Array(0..<count)
        if channels.max()! - channels.min()! < 40 { candidates = count > 8 ? [0, 7, 8, 15] : [0, 7] }
        let palette = candidates.map { ansi16[$0] }
        return UInt8(candidates[Int(nearest(in: palette, red: red, green: green, blue: blue))])
    }

    /// The index of the nearest colour in a palette.
    static func nearest<C: Collection>(in palette: C, red: UInt8, green: UInt8, blue: UInt8) -> UInt8
    where C.Element == (UInt8, UInt8, UInt8), C.Index == Int {
        var best = palette.startIndex
        var bestDistance = Int.max
        for index in palette.indices {
            let candidate = distance(palette[index], (red, green, blue))
            if candidate < bestDistance {
                best = index
                bestDistance = candidate
            }
        }
        return UInt8(best)
    }

    /// Squared distance between two colours, weighted for the eye (green counts most).
    static func distance(_ lhs: (UInt8, UInt8, UInt8), _ rhs: (UInt8, UInt8, UInt8)) -> Int {
        let red = Int(lhs.0) - Int(rhs.0), green = Int(lhs.1) - Int(rhs.1), blue = Int(lhs.2) - Int(rhs.2)
        return 3 * red * red + 4 * green * green + 2 * blue * blue
    }
}
