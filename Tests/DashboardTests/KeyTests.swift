@testable import Telemetry
import Testing
@testable import Dashboard

@Suite("One key table drives dispatch, help and footer")
struct KeyTests {
    let snapshot = Fixtures.snapshot(lanes: 3)

    @Test("every action has a binding and no key is bound twice")
    func tableIsComplete() {
        for action in KeyAction.allCases {
            #expect(KeyTable.bindings.contains { $0.action == action }, "no key for \(action)")
        }
        let keys = KeyTable.bindings.flatMap(\.keys)
        #expect(Set(keys).count == keys.count)
    }

    @Test("the keys of the issue are bound as it says")
    func issueKeys() {
        let expected: [(Key, KeyAction)] = [
            (.character("+"), .addLane), (.character("a"), .addLane), (.character("-"), .dropLane), (.character("d"), .dropLane),
            (.up, .selectUp), (.character("k"), .selectUp), (.down, .selectDown), (.character("j"), .selectDown),
            (.character("p"), .togglePause), (.character(" "), .freezeDisplay), (.character("t"), .cycleTheme),
            (.character("<"), .slowerRefresh), (.character(">"), .fasterRefresh), (.character("q"), .quit), (.function(10), .quit), (.character("S"), .stopCopy),
            (.character("?"), .help), (.character("h"), .help), (.function(1), .help),
        ]
        for (key, action) in expected { #expect(KeyTable.action(for: key) == action, "\(key)") }
        #expect(KeyTable.action(for: .character("x")) == nil)
    }

    @Test("the help overlay lists every key and description of the table")
    func helpListsEveryKey() {
        var state = Fixtures.state()
        state.helpVisible = true
        let text = render(snapshot: snapshot, state: state, theme: .default, size: (80, 24)).plainText
        for binding in KeyTable.bindings {
            #expect(text.contains(binding.keyNames), "help misses \(binding.keyNames)")
            #expect(text.contains(String(binding.description.prefix(30))), "help misses \(binding.description)")
            for key in binding.keys { #expect(text.contains(key.displayName)) }
        }
    }

    @Test("the help overlay also fits the minimum size")
    func helpAtMinimum() {
        var state = Fixtures.state()
        state.helpVisible = true
        let text = render(snapshot: snapshot, state: state, theme: .default, size: DashboardLayout.minimumSize).plainText
        for binding in KeyTable.bindings { #expect(text.contains(binding.keyNames)) }
    }

    @Test("the footer is built from the table, and at 80 columns shows every entry but the refresh keys")
    func footer() {
        let wide = Footer.text(width: 200)
        for binding in KeyTable.bindings where !binding.footerKeys.isEmpty {
            #expect(wide.contains("\(binding.footerKeys) \(binding.footerLabel)"))
        }
        let grid = render(snapshot: snapshot, state: Fixtures.state(), theme: .default, size: (80, 24))
        #expect(grid.text(row: 23).trimmingSpaces() == Footer.text(width: 80))
        #expect(Footer.text(width: 80) == wide.replacing("<> refresh  ", with: ""))
        let narrow = Footer.text(width: 40)
        #expect(narrow.contains("q quit"))
        #expect(narrow.contains("? help"))
        #expect(DisplayWidth.of(narrow) <= 40)
    }

    @Test("+ and a add a lane; - and d drop the selected lane, or the newest without a selection")
    func laneKeys() {
        var state = Fixtures.state()
        #expect(state.handle(.character("+"), latest: snapshot, copyRunning: true) == .addLane)
        #expect(state.handle(.character("a"), latest: snapshot, copyRunning: true) == .addLane)
        #expect(state.handle(.character("-"), latest: snapshot, copyRunning: true) == .dropLane(laneID: nil))
        state.selected = ConnectionID(laneID: 2, side: .destination)
        #expect(state.handle(.character("d"), latest: snapshot, copyRunning: true) == .dropLane(laneID: 2))
        state.selected = ConnectionID(laneID: 9, side: .source)
        #expect(state.handle(.character("d"), latest: snapshot, copyRunning: true) == .dropLane(laneID: nil))
    }

    @Test("↑/↓ and k/j move the selection through sources then destinations, stopping at the ends")
    func selection() {
        var state = Fixtures.state()
        _ = state.handle(.down, latest: snapshot, copyRunning: true)
        #expect(state.selected == ConnectionID(laneID: 1, side: .source))
        for _ in 0..<3 { _ = state.handle(.character("j"), latest: snapshot, copyRunning: true) }
        #expect(state.selected == ConnectionID(laneID: 1, side: .destination))
        for _ in 0..<10 { _ = state.handle(.down, latest: snapshot, copyRunning: true) }
        #expect(state.selected == ConnectionID(laneID: 3, side: .destination))
        _ = state.handle(.character("k"), latest: snapshot, copyRunning: true)
        #expect(state.selected == ConnectionID(laneID: 2, side: .destination))
        var fresh = Fixtures.state()
        _ = fresh.handle(.up, latest: snapshot, copyRunning: true)
        #expect(fresh.selected == ConnectionID(laneID: 3, side: .destination))
    }

    @Test("p toggles pause from what the snapshot says")
    func pause() {
        var state = Fixtures.state()
        #expect(state.handle(.character("p"), latest: snapshot, copyRunning: true) == .setPaused(true))
        #expect(state.handle(.character("p"), latest: Fixtures.snapshot(paused: true), copyRunning: true) == .setPaused(false))
    }

    @Test("q asks y/n while the copy runs: y quits, anything else cancels; q quits at once otherwise")
    func quit() {
        var state = Fixtures.state()
        #expect(state.handle(.character("q"), latest: snapshot, copyRunning: true) == nil)
        #expect(state.quitConfirmationPending)
        let prompt = render(snapshot: snapshot, state: state, theme: .default, size: (80, 24))
        #expect(prompt.text(row: 23).contains("quit? y"))
        #expect(state.handle(.resize, latest: snapshot, copyRunning: true) == nil)
        #expect(state.quitConfirmationPending)
        #expect(state.handle(.character("y"), latest: snapshot, copyRunning: true) == .quit)
        #expect(!state.quitConfirmationPending)

        #expect(state.handle(.function(10), latest: snapshot, copyRunning: true) == nil)
        #expect(state.handle(.character("n"), latest: snapshot, copyRunning: true) == nil)
        #expect(!state.quitConfirmationPending)
        #expect(state.handle(.character("q"), latest: snapshot, copyRunning: false) == .quit)
    }

    @Test("attached: q detaches at once, S asks y/n and y stops the copy; help and footer say so")
    func attachedKeys() {
        var state = Fixtures.state()
        state.attached = true
        #expect(state.handle(.character("q"), latest: snapshot, copyRunning: true) == .detach)
        #expect(state.handle(.character("S"), latest: snapshot, copyRunning: true) == nil)
        #expect(state.quitConfirmationPending)
        let prompt = render(snapshot: snapshot, state: state, theme: .default, size: (80, 24))
        #expect(prompt.text(row: 23).contains("Stop the copy? y"))
        #expect(state.handle(.character("y"), latest: snapshot, copyRunning: true) == .stopCopy)
        #expect(state.handle(.character("S"), latest: snapshot, copyRunning: true) == nil)
        #expect(state.handle(.character("n"), latest: snapshot, copyRunning: true) == nil)
        #expect(!state.quitConfirmationPending)

        let footer = render(snapshot: snapshot, state: state, theme: .default, size: (80, 24)).text(row: 23)
        #expect(footer.contains("q detach") && footer.contains("S stop") && footer.contains("? help"), "\(footer)")
        state.helpVisible = true
        let help = render(snapshot: snapshot, state: state, theme: .default, size: (80, 24)).plainText
        #expect(help.contains("detach: leave the dashboard") && help.contains("stop the copy (asks y/n"))
    }

    @Test("not attached, S stops the copy as q does: it asks y/n first")
    func stopKeyLocally() {
        var state = Fixtures.state()
        #expect(state.handle(.character("S"), latest: snapshot, copyRunning: true) == nil)
        #expect(state.handle(.character("y"), latest: snapshot, copyRunning: true) == .quit)
        #expect(!Footer.text(width: 200).contains("S stop"), "q already stops: S is in the help only")
    }

    @Test("? shows help and any key closes it without acting")
    func help() {
        var state = Fixtures.state()
        #expect(state.handle(.character("?"), latest: snapshot, copyRunning: true) == nil)
        #expect(state.helpVisible)
        #expect(state.handle(.character("+"), latest: snapshot, copyRunning: true) == nil)
        #expect(!state.helpVisible)
        _ = state.handle(.function(1), latest: snapshot, copyRunning: true)
        #expect(state.helpVisible)
    }

    @Test("space freezes the display on the current snapshot and shows the FROZEN badge")
    func freeze() {
        var state = Fixtures.state()
        _ = state.handle(.character(" "), latest: snapshot, copyRunning: true)
        #expect(state.isFrozen)
        var later = snapshot
        later.bytesDone = 3 << 30
        let grid = render(snapshot: later, state: state, theme: .default, size: (80, 24))
        #expect(grid.text(row: 0).contains("FROZEN"))
        #expect(grid.plainText.contains("1.0 GiB / 4.0 GiB"))
        _ = state.handle(.character(" "), latest: later, copyRunning: true)
        #expect(!state.isFrozen)
    }

    @Test("t cycles the themes; < and > step the refresh interval within 100 ms and 2 s")
    func themeAndRefresh() {
        var state = DashboardState(sourceName: "a", destinationName: "b", requestsPerLane: 64,
                                   themeNames: ["default", "light", "mono"], themeIndex: 0)
        _ = state.handle(.character("t"), latest: snapshot, copyRunning: true)
        #expect(state.themeIndex == 1)
        _ = state.handle(.character("t"), latest: snapshot, copyRunning: true)
        _ = state.handle(.character("t"), latest: snapshot, copyRunning: true)
        #expect(state.themeIndex == 0)
        #expect(state.refreshInterval == .milliseconds(250))
        _ = state.handle(.character(">"), latest: snapshot, copyRunning: true)
        #expect(state.refreshInterval == .milliseconds(100))
        _ = state.handle(.character(">"), latest: snapshot, copyRunning: true)
        #expect(state.refreshInterval == .milliseconds(100))
        for _ in 0..<10 { _ = state.handle(.character("<"), latest: snapshot, copyRunning: true) }
        #expect(state.refreshInterval == .seconds(2))
        #expect(state.eventLog.entries.last?.text == "refresh every 2.00s")
    }

    @Test("engine events become event-pane lines with reasons")
    func events() {
        var state = Fixtures.state()
        state.record(.laneAdded(laneID: 2), at: .seconds(1))
        state.record(.laneRefused(reason: "source: server does not advertise multi-conn: one connection only"), at: .seconds(2))
        state.record(.laneFailed(laneID: 3, reason: "connection refused"), at: .seconds(3))
        state.record(.stall(laneID: 1, side: .source, oldestAge: .milliseconds(800), held: 12), at: .seconds(4))
        state.record(.retry(laneID: 1, side: .source, offset: 4096, length: 262144, attempt: 0, error: "EIO"), at: .seconds(5))
        state.record(.laneDropped(laneID: 2), at: .seconds(6))
        state.record(.slowRequest(laneID: 1, side: .source, operation: .read, offset: 1 << 20, length: 1 << 20,
                                  latency: .milliseconds(1500)), at: .seconds(7))
        let grid = render(snapshot: snapshot, state: state, theme: .default, size: (120, 40))
        let text = grid.plainText
        #expect(text.contains("cannot add a lane: source: server does not advertise multi-conn"))
        #expect(text.contains("lane 3 failed: connection refused"))
        #expect(text.contains("lane 1 src head-of-line stall: oldest request 800ms, 12 held behind it"))
        #expect(text.contains("lane 1 src: retrying 256.0 KiB at offset 4096 (attempt 1): EIO"))
        #expect(text.contains("lane 1 src slow request, not a stall: read of 1.0 MiB at 1048576 took 1.50s, others kept moving"))
        #expect(text.contains("lane 2 dropped"))
        let failed = grid.find("lane 3 failed")!
        #expect(grid[failed.row, failed.column].foreground == Theme.default[.error].foreground)
    }

    @Test("the event log keeps only the newest lines")
    func boundedLog() {
        var log = EventLog(capacity: 3)
        for index in 0..<5 { log.append(EventLogEntry(elapsed: .zero, text: "\(index)", severity: .info)) }
        #expect(log.entries.map(\.text) == ["2", "3", "4"])
    }
}

@Suite("The list of running copies")
struct CopyListTests {
    static let entries = [101, 202, 303].map { CopyListState.Entry(pid: Int32($0), line: "\($0)  src\($0) → dst  running") }

    @Test("arrows move the selection, which follows its copy across refreshes; Enter attaches, q quits")
    func keys() {
        var state = CopyListState()
        #expect(state.handle(.enter) == nil, "nothing to attach before the list is read")
        state.update(Self.entries)
        #expect(state.selectedPID == 101)
        _ = state.handle(.down)
        _ = state.handle(.character("j"))
        _ = state.handle(.down)
        #expect(state.selectedPID == 303, "stops at the end")
        _ = state.handle(.character("k"))
        #expect(state.handle(.enter) == .attach(pid: 202))
        state.update(Array(Self.entries.reversed()))
        #expect(state.selectedPID == 202 && state.selectedIndex == 1, "the selection follows pid 202")
        state.update(Self.entries.filter { $0.pid != 202 })
        #expect(state.selectedPID == 101, "a copy that ended gives the selection to the first")
        #expect(state.handle(.character("q")) == .quit)
        #expect(state.handle(.function(10)) == .quit)
    }

    @Test("every copy has a row, the selected one marked; the footer names the keys")
    func render() {
        var state = CopyListState()
        let empty = renderCopyList(state, theme: .default, size: TerminalSize(columns: 80, rows: 10)).plainText
        #expect(empty.contains("looking for copies"))
        state.update([])
        #expect(renderCopyList(state, theme: .default, size: TerminalSize(columns: 80, rows: 10)).plainText
            .contains("no copy is running"))
        state.update(Self.entries)
        _ = state.handle(.down)
        let grid = renderCopyList(state, theme: .default, size: TerminalSize(columns: 80, rows: 10))
        #expect(grid.text(row: 0).contains("3 running copies"))
        #expect(grid.text(row: 2).hasPrefix(" 101  src101"))
        #expect(grid.text(row: 3).hasPrefix(">202  src202"))
        #expect(grid.text(row: 9).contains("↑↓ select  Enter attach  q quit"))
    }
}
