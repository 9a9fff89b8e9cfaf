#if canImport(Glibc)
import Glibc
#endif
@testable import Dashboard

/// Whole-grid comparisons against files in `Tests/DashboardTests/Golden/`: every cell's
/// character and style. `make golden` (or `NBDTOP_UPDATE_GOLDEN=1` in the environment)
/// writes the files instead of comparing, so a change of layout is reviewed as a diff.
enum GoldenGrid {
    static var directory: String { TestFiles.repositoryRoot + "/Tests/DashboardTests/Golden" }

    static var updating: Bool {
        guard let value = getenv("NBDTOP_UPDATE_GOLDEN") else { return false }
        return String(cString: value) == "1"
    }

    /// The grid as text: its size, the rows between bars, the same rows with one letter
    /// per cell naming its style, and the letters' styles in order of first use.
    static func serialize(_ grid: CellGrid) -> String {
        let letters = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        var styles: [Style] = []
        var text = "size \(grid.columns)x\(grid.rows)\ntext\n"
        for row in 0..<grid.rows { text += "|" + grid.text(row: row) + "|\n" }
        text += "styles\n"
        for row in 0..<grid.rows {
            var line = "|"
            for column in 0..<grid.columns {
                let style = grid[row, column].style
                let index = styles.firstIndex(of: style) ?? { styles.append(style); return styles.count - 1 }()
                line.append(index < letters.count ? letters[index] : "?")
            }
            text += line + "|\n"
        }
        text += "legend\n"
        for (index, style) in styles.enumerated() {
            let attributes = CellAttributes.names.filter { style.attributes.contains($0.attribute) }.map(\.name)
            text += "\(index < letters.count ? letters[index] : "?") fg=\(style.foreground) bg=\(style.background)"
                + " attrs=\(attributes.isEmpty ? "none" : attributes.joined(separator: ","))\n"
        }
        return text
    }

    /// Nil when `grid` matches the golden file `name`, else the first differing line (or
    /// why there is no file). Writes the file instead when updating.
    static func mismatch(_ grid: CellGrid, _ name: String) -> String? {
        let path = directory + "/" + name + ".grid"
        let actual = serialize(grid)
        if updating {
            TestFiles.write(actual, to: path)
            return nil
        }
        guard let expected = TestFiles.read(path) else { return "no golden file \(path): run make golden" }
        guard expected != actual else { return nil }
        let expectedLines = expected.split(separator: "\n", omittingEmptySubsequences: false)
        let actualLines = actual.split(separator: "\n", omittingEmptySubsequences: false)
        for index in 0..<max(expectedLines.count, actualLines.count) {
            let want = index < expectedLines.count ? String(expectedLines[index]) : "<none>"
            let got = index < actualLines.count ? String(actualLines[index]) : "<none>"
            if want != got { return "\(name).grid line \(index + 1):\n expected \(want)\n actual   \(got)\n(make golden rewrites the files)" }
        }
        return "\(name).grid differs"
    }
}
