/// A theme and where it came from.
public struct LoadedTheme: Sendable {
    public var theme: Theme
    /// The file it was read from; nil for the compiled-in default.
    public var path: String?
    public var warnings: [ThemeWarning]
}

/// The themes `t` cycles through, and which one is current.
public struct ThemeCycle: Sendable {
    public var themes: [LoadedTheme]
    /// Index of the theme selected with `--theme` (or the default).
    public var index: Int
    /// Other theme files that could not be used and were left out of the cycle.
    public var skipped: [ThemeError]

    /// Every theme's name, in cycle order.
    public var names: [String] { themes.map(\.theme.name) }
}

/// Finds theme files (Themes/README.md): an explicit path, then by name in
/// `$XDG_CONFIG_HOME/nbdtop/themes/` (or `~/.config/...`), `/usr/local/share/nbdtop/themes/`,
/// the repository's `Themes/` (`$NBDTOP_THEMES_DIR`, or found by walking up from the
/// executable), and finally the compiled-in default.
public struct ThemeLocator: Sendable {
    public var environment: [String: String]
    public var executablePath: String?
    /// The installed share folder.
    public var sharedDirectory: String

    public init(environment: [String: String] = ProcessEnvironment.current(),
                executablePath: String? = ProcessEnvironment.executablePath(),
                sharedDirectory: String = "/usr/local/share/nbdtop/themes") {
        self.environment = environment
        self.executablePath = executablePath
        self.sharedDirectory = sharedDirectory
    }

    /// The folders searched for a theme by name, in order (existing or not).
    public var searchDirectories: [String] {
        var directories: [String] = []
        if let config = environment["XDG_CONFIG_HOME"], !config.isEmpty {
            directories.append(config + "/nbdtop/themes")
        } else if let home = environment["HOME"], !home.isEmpty {
            directories.append(home + "/.config/nbdtop/themes")
        }
        directories.append(sharedDirectory)
        if let explicit = environment["NBDTOP_THEMES_DIR"], !explicit.isEmpty { directories.append(explicit) }
        directories.append(contentsOf: executableRelativeDirectories())
        var seen = Set<String>()
        return directories.filter { seen.insert($0).inserted }
    }

    /// Whether `text` names a file rather than a theme (it has a `/` or ends in `.theme`).
    public static func isPath(_ text: String) -> Bool {
        text.contains("/") || text.hasSuffix(".theme")
    }

    /// Loads a theme by name or path; nil means `default`. A path must be readable and
    /// valid; a name is looked up in `searchDirectories`, and `default` falls back to the
    /// compiled-in theme.
    public func load(_ nameOrPath: String?) throws(ThemeError) -> LoadedTheme {
        let request = nameOrPath ?? "default"
        if Self.isPath(request) { return try loadFile(request) }
        for directory in searchDirectories {
            let path = directory + "/" + request + ".theme"
            if FileSystem.isReadableFile(path) { return try loadFile(path) }
        }
        if request == "default" { return LoadedTheme(theme: .default, path: nil, warnings: []) }
        let known = availableNames().joined(separator: ", ")
        throw ThemeError(file: request, message: "no theme named '\(request)' (looked in \(searchDirectories.joined(separator: ", ")); available: \(known))")
    }

    /// Reads and parses one theme file.
    public func loadFile(_ path: String) throws(ThemeError) -> LoadedTheme {
        let text: String
        do {
            text = try FileSystem.readText(path)
        } catch {
            throw ThemeError(file: path, message: "cannot read theme file: \(error.reason)")
        }
        let parsed = try ThemeParser.parse(text, file: path)
        return LoadedTheme(theme: parsed.theme, path: path, warnings: parsed.warnings)
    }

    /// The names of every theme found, `default` first, then alphabetically.
    public func availableNames() -> [String] {
        var names = Set(["default"])
        for directory in searchDirectories {
            for file in FileSystem.contents(of: directory) where file.hasSuffix(".theme") && file.count > 6 {
                names.insert(String(file.dropLast(6)))
            }
        }
        return ["default"] + names.subtracting(["default"]).sorted()
    }

    /// Every available theme for cycling with `t`, starting from `selected` (a name or a
    /// path; nil for the default). Throws only when `selected` itself cannot be used.
    public func cycle(selected: String?) throws(ThemeError) -> ThemeCycle {
        let chosen = try load(selected)
        var themes: [LoadedTheme] = []
        var skipped: [ThemeError] = []
        for name in availableNames() {
            if name == chosen.theme.name {
                themes.append(chosen)
                continue
            }
            do {
                themes.append(try load(name))
            } catch {
                skipped.append(error)
            }
        }
        if !themes.contains(where: { $0.theme.name == chosen.theme.name }) { themes.insert(chosen, at: 0) }
        let index = themes.firstIndex { $0.theme.name == chosen.theme.name } ?? 0
        return ThemeCycle(themes: themes, index: index, skipped: skipped)
    }

    /// `Themes/` of a source checkout above the executable (`.build/debug/nbdtop` → the
    /// repository), and `../share/nbdtop/themes` of an install prefix.
    private func executableRelativeDirectories() -> [String] {
        guard let executablePath, executablePath.contains("/") else { return [] }
        var directories: [String] = []
        let binDirectory = FileSystem.parent(executablePath)
        directories.append(FileSystem.parent(binDirectory) + "/share/nbdtop/themes")
        var directory = binDirectory
        for _ in 0..<6 {
            let candidate = directory + "/Themes"
            if FileSystem.isReadableFile(candidate + "/default.theme") {
                directories.append(candidate)
                break
            }
            let up = FileSystem.parent(directory)
            if up == directory { break }
            directory = up
        }
        return directories.filter(FileSystem.isDirectory)
    }
}
