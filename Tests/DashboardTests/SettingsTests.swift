@testable import Telemetry
import Testing
@testable import Dashboard

@Suite("nbdtop.conf: the dashboard's saved choices")
struct SettingsTests {
    @Test("every key parses; comments and blank lines are skipped")
    func parses() throws {
        let text = """
            # mine
            theme = mono
            refresh = 500ms

            sort = rate   # largest first
            sort_order = descending
            hidden_columns = slow, held
            """
        let settings = try DashboardSettings.parse(text, path: "/x/nbdtop.conf")
        #expect(settings == DashboardSettings(theme: "mono", refreshInterval: .milliseconds(500),
                                              sort: TableSort(column: .rate, descending: true), hiddenColumns: ["slow", "held"]))
    }

    @Test("a bad line is named with the file and its line number", arguments: [
        ("theme = mono\nrefresh = fast\n", 2, "refresh"),
        ("colour = red\n", 1, "unknown key 'colour'"),
        ("sort = speed\n", 1, "sort must be one of"),
        ("\n\nhidden_columns = p50, nonsense\n", 3, "no column 'nonsense'"),
        ("just words\n", 1, "expected 'key = value'"),
        ("refresh = 10s\n", 1, "100ms to 2s"),
    ])
    func badLine(text: String, line: Int, words: String) {
        #expect {
            _ = try DashboardSettings.parse(text, path: "/home/u/.config/nbdtop/nbdtop.conf")
        } throws: { error in
            guard let error = error as? DashboardSettings.ParseError else { return false }
            return error.line == line && error.description.hasPrefix("/home/u/.config/nbdtop/nbdtop.conf:\(line): ")
                && error.description.contains(words) && error.description.hasSuffix("using the defaults")
        }
    }

    @Test("saving and loading give the same choices; a bad file gives a warning and the defaults")
    func roundTrip() throws {
        let folder = TestFiles.makeDirectory()
        defer { TestFiles.remove(folder) }
        let path = folder + "/config/nbdtop/nbdtop.conf"
        #expect(DashboardSettings.path(environment: ["XDG_CONFIG_HOME": folder + "/config"]) == path)
        #expect(DashboardSettings.path(environment: ["HOME": "/home/u"]) == "/home/u/.config/nbdtop/nbdtop.conf")
        #expect(DashboardSettings.load(path: path) == (DashboardSettings(), nil), "no file: defaults, no warning")

        var state = DashboardState(sourceName: "a", destinationName: "b", requestsPerLane: 64, themeNames: ["default", "mono"])
        state.themeIndex = 1
        state.refreshInterval = .seconds(1)
        state.sort = TableSort(column: .p99, descending: true)
        state.hiddenColumns = [.slow]
        try state.settings.save(path: path)
        let (loaded, warning) = DashboardSettings.load(path: path)
        #expect(warning == nil)
        var fresh = DashboardState(sourceName: "a", destinationName: "b", requestsPerLane: 64, themeNames: ["default", "mono"])
        fresh.apply(loaded, theme: true)
        #expect(fresh.themeIndex == 1 && fresh.refreshInterval == .seconds(1) && fresh.sort == state.sort)
        #expect(fresh.hiddenColumns == [.slow])

        TestFiles.write("theme = mono\nbogus\n", to: path)
        let (defaults, badWarning) = DashboardSettings.load(path: path)
        #expect(defaults == DashboardSettings())
        #expect(badWarning?.hasPrefix(path + ":2: ") == true, "\(badWarning ?? "")")
    }

    @Test("hidden columns leave the table; F2 asks to save the current choices")
    func hiddenAndSaveKey() {
        var state = Fixtures.state()
        state.apply(DashboardSettings(hiddenColumns: ["p99", "slow"]), theme: true)
        let titles = render(snapshot: Fixtures.snapshot(), state: state, theme: .default, size: (120, 40)).text(row: DashboardLayout.headerRows)
        #expect(!titles.contains("p99") && !titles.contains("slow"))
        #expect(titles.contains("p50"))
        let command = state.handle(.function(2), latest: Fixtures.snapshot(), copyRunning: true)
        #expect(command == .saveSettings(state.settings))
    }
}
