/// The choices the dashboard remembers between runs, htop-style: theme, refresh interval,
/// sort column and order, hidden columns. Read from `nbdtop.conf`
/// (`$XDG_CONFIG_HOME/nbdtop/nbdtop.conf`, else `~/.config/nbdtop/nbdtop.conf`) when the
/// dashboard opens; F2 writes the current choices back.
///
/// The file has one `key = value` per line; `#` starts a comment:
///
/// ```
/// theme = mono
/// refresh = 500ms
/// sort = rate
/// sort_order = descending
/// hidden_columns = slow, held
/// ```
///
/// A file with any bad line is not used at all: the dashboard warns, naming the file and
/// the line, and starts with the defaults.
public struct DashboardSettings: Sendable, Equatable {
    public var theme: String?
    public var refreshInterval: Duration?
    public var sort: TableSort?
    public var hiddenColumns: Set<String> = []

    public init(theme: String? = nil, refreshInterval: Duration? = nil, sort: TableSort? = nil, hiddenColumns: Set<String> = []) {
        self.theme = theme
        self.refreshInterval = refreshInterval
        self.sort = sort
        self.hiddenColumns = hiddenColumns
    }

    /// A line of the file that could not be used.
    public struct ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        public var path: String
        public var line: Int
        public var reason: String
        public var description: String { "\(path):\(line): \(reason); using the defaults" }
    }

    /// The file's path for `environment` (`XDG_CONFIG_HOME`, else `HOME`); nil with neither.
    public static func path(environment: [String: String]) -> String? {
        if let config = environment["XDG_CONFIG_HOME"], !config.isEmpty { return config + "/nbdtop/nbdtop.conf" }
        if let home = environment["HOME"], !home.isEmpty { return home + "/.config/nbdtop/nbdtop.conf" }
        return nil
    }

    /// Parses the file's text; `path` names it in the error.
    public static func parse(_ text: String, path: String) throws(ParseError) -> DashboardSettings {
        var settings = DashboardSettings()
        var sortColumn: TableSort.Column?
        var descending: Bool?
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            func fail(_ reason: String) -> ParseError { ParseError(path: path, line: index + 1, reason: reason) }
            let line = trimmed(rawLine.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
            if line.isEmpty { continue }
            guard let equals = line.firstIndex(of: "=") else { throw fail("expected 'key = value', found '\(line)'") }
            let key = trimmed(line[..<equals]), value = trimmed(line[line.index(after: equals)...])
            switch key {
            case "theme":
                guard !value.isEmpty else { throw fail("theme needs a name") }
                settings.theme = value
            case "refresh":
                guard let interval = parseInterval(value), interval >= RefreshInterval.minimum, interval <= RefreshInterval.maximum
                else { throw fail("refresh must be 100ms to 2s, found '\(value)'") }
                settings.refreshInterval = interval
            case "sort":
                guard let column = TableSort.Column(rawValue: value) else {
                    throw fail("sort must be one of \(TableSort.Column.allCases.map(\.rawValue).joined(separator: ", ")), found '\(value)'")
                }
                sortColumn = column
            case "sort_order":
                guard value == "ascending" || value == "descending" else {
                    throw fail("sort_order must be ascending or descending, found '\(value)'")
                }
                descending = value == "descending"
            case "hidden_columns":
                let names = value.split(separator: ",").map { trimmed($0) }.filter { !$0.isEmpty }
                for name in names where TableColumn(configName: name) == nil {
                    throw fail("no column '\(name)' to hide (columns: \(TableColumn.hideable.map(\.configName).joined(separator: ", ")))")
                }
                settings.hiddenColumns = Set(names)
            default:
                throw fail("unknown key '\(key)' (keys: theme, refresh, sort, sort_order, hidden_columns)")
            }
        }
        if sortColumn != nil || descending != nil {
            settings.sort = TableSort(column: sortColumn ?? .lane, descending: descending ?? false)
        }
        return settings
    }

    /// The file's text for these settings.
    public var text: String {
        var lines = ["# nbdtop dashboard settings, written by F2; edit freely (see README)."]
        if let theme { lines.append("theme = \(theme)") }
        if let refreshInterval { lines.append("refresh = \(Self.format(refreshInterval))") }
        if let sort {
            lines.append("sort = \(sort.column.rawValue)")
            lines.append("sort_order = \(sort.descending ? "descending" : "ascending")")
        }
        lines.append("hidden_columns = " + hiddenColumns.sorted().joined(separator: ", "))
        return lines.joined(separator: "\n") + "\n"
    }

    /// `250ms`, `1s`, `1.5s`.
    static func parseInterval(_ text: String) -> Duration? {
        if text.hasSuffix("ms"), let value = Double(text.dropLast(2)), value.isFinite, value >= 0 {
            return .milliseconds(Int64(value.rounded()))
        }
        if text.hasSuffix("s"), let value = Double(text.dropLast()), value.isFinite, value >= 0 {
            return .milliseconds(Int64((value * 1000).rounded()))
        }
        return nil
    }

    static func format(_ interval: Duration) -> String {
        let milliseconds = Int64(Format.seconds(interval) * 1000 + 0.5)
        return milliseconds % 1000 == 0 ? "\(milliseconds / 1000)s" : "\(milliseconds)ms"
    }

    private static func trimmed(_ text: Substring) -> String {
        String(text.drop { $0 == " " || $0 == "\t" || $0 == "\r" }.reversed().drop { $0 == " " || $0 == "\t" || $0 == "\r" }.reversed())
    }

    private static func trimmed(_ text: String) -> String { trimmed(Substring(text)) }
}

extension DashboardSettings {
    /// Reads the file at `path`: the settings, none when it does not exist, or the
    /// warning to show (and the defaults) when it cannot be read or has a bad line.
    @available(*, noasync, message: "reads a file; call it before the dashboard loop starts")
    public static func load(path: String) -> (settings: DashboardSettings, warning: String?) {
        guard FileSystem.isReadableFile(path) else {
            return (DashboardSettings(), FileSystem.exists(path) ? "\(path): cannot be read; using the defaults" : nil)
        }
        do {
            return (try parse(try FileSystem.readText(path), path: path), nil)
        } catch let error as ParseError {
            return (DashboardSettings(), error.description)
        } catch {
            return (DashboardSettings(), "\(path): \(error); using the defaults")
        }
    }

    /// Writes the file at `path` (creating its folder), replacing it whole; throws the
    /// system's reason.
    @available(*, noasync, message: "writes a file")
    public func save(path: String) throws(FileSystemError) {
        FileSystem.makeDirectories(FileSystem.parent(path))
        try FileSystem.writeText(text, to: path)
    }
}

extension DashboardState {
    /// Applies `settings` (the theme by name, when it is one of the cycle's).
    public mutating func apply(_ settings: DashboardSettings, theme: Bool) {
        if theme, let name = settings.theme, let index = themeNames.firstIndex(of: name) { themeIndex = index }
        if let refreshInterval = settings.refreshInterval { self.refreshInterval = refreshInterval }
        if let sort = settings.sort { self.sort = sort }
        hiddenColumns = Set(settings.hiddenColumns.compactMap(TableColumn.init(configName:)))
    }

    /// The current choices, to save.
    public var settings: DashboardSettings {
        DashboardSettings(theme: themeNames[themeIndex], refreshInterval: refreshInterval, sort: sort,
                          hiddenColumns: Set(hiddenColumns.map(\.configName)))
    }
}
