import Testing
@testable import Dashboard

@Suite("Finding themes")
struct ThemeLocatorTests {
    @Test("search order: XDG config, share folder, NBDTOP_THEMES_DIR, then the repository by the executable")
    func order() {
        let locator = ThemeLocator(environment: ["XDG_CONFIG_HOME": "/cfg", "HOME": "/home/u", "NBDTOP_THEMES_DIR": "/repo/Themes"],
                                   executablePath: TestFiles.repositoryRoot + "/.build/debug/nbdtop")
        let directories = locator.searchDirectories
        #expect(Array(directories.prefix(3)) == ["/cfg/nbdtop/themes", "/usr/local/share/nbdtop/themes", "/repo/Themes"])
        #expect(directories.last == TestFiles.themesDirectory)
        let home = ThemeLocator(environment: ["HOME": "/home/u"], executablePath: nil)
        #expect(home.searchDirectories == ["/home/u/.config/nbdtop/themes", "/usr/local/share/nbdtop/themes"])
    }

    @Test("a name is found in the first folder that has it; a path is read as is")
    func byNameAndPath() throws {
        let root = TestFiles.makeDirectory()
        defer { TestFiles.remove(root) }
        TestFiles.makeDirectory(root + "/config/nbdtop/themes")
        TestFiles.makeDirectory(root + "/repo")
        TestFiles.write("rate = red\n", to: root + "/config/nbdtop/themes/light.theme")
        TestFiles.write("rate = blue\n", to: root + "/repo/light.theme")
        TestFiles.write("rate = green\n", to: root + "/repo/extra.theme")
        let locator = ThemeLocator(environment: ["XDG_CONFIG_HOME": root + "/config", "NBDTOP_THEMES_DIR": root + "/repo"],
                                   executablePath: nil, sharedDirectory: root + "/none")
        #expect(try locator.load("light").theme[.rate].foreground == .named(1))
        #expect(try locator.load("extra").path == root + "/repo/extra.theme")
        #expect(try locator.load(root + "/repo/light.theme").theme[.rate].foreground == .named(4))
        #expect(locator.availableNames() == ["default", "extra", "light"])
    }

    @Test("default falls back to the compiled-in theme; another missing name is an error listing what exists")
    func missing() {
        let locator = ThemeLocator(environment: [:], executablePath: nil, sharedDirectory: "/nonexistent")
        let loaded = try? locator.load(nil)
        #expect(loaded?.path == nil)
        #expect(loaded?.theme == Theme.default)
        #expect {
            _ = try locator.load("nope")
        } throws: { error in
            (error as? ThemeError)?.description.contains("no theme named 'nope'") == true
        }
    }

    @Test("an unreadable path and an invalid file are errors naming the file (and line)")
    func badFiles() throws {
        let root = TestFiles.makeDirectory()
        defer { TestFiles.remove(root) }
        TestFiles.write("rate = red\nheader = chartreuse\n", to: root + "/bad.theme")
        let locator = ThemeLocator(environment: [:], executablePath: nil)
        #expect {
            _ = try locator.load(root + "/missing.theme")
        } throws: { error in
            (error as? ThemeError)?.description.hasPrefix(root + "/missing.theme: cannot read theme file") == true
        }
        #expect {
            _ = try locator.load(root + "/bad.theme")
        } throws: { error in
            (error as? ThemeError)?.description.hasPrefix(root + "/bad.theme:2: header: unknown colour") == true
        }
    }

    @Test("the repository's Themes/ is found from an executable under .build, and t cycles all of them")
    func repositoryCycle() throws {
        let locator = ThemeLocator(environment: [:], executablePath: TestFiles.repositoryRoot + "/.build/debug/nbdtop",
                                   sharedDirectory: "/nonexistent")
        let cycle = try locator.cycle(selected: "light")
        #expect(cycle.names.first == "default")
        #expect(cycle.names.contains("mono") && cycle.names.contains("high-contrast"))
        #expect(cycle.names[cycle.index] == "light")
        #expect(cycle.skipped.isEmpty)
    }
}
