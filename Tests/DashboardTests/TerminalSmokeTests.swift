import Testing
@testable import NBDCopy
@testable import Dashboard

/// Drives the real terminal layer; runs only with DASHBOARD_TTY=1 on a terminal, or
/// DASHBOARD_TTY=crash to check the crash guard restores it (the end-to-end tmux tests
/// cover the real binary).
@Suite("Terminal smoke (DASHBOARD_TTY=1)")
struct TerminalSmokeTests {
    @Test func interactive() throws {
        guard let mode = getenvValue("DASHBOARD_TTY"), mode == "1" || mode == "crash" else { return }
        let screen = try NCursesScreen()
        defer { screen.restore() }
        let cycle = try ThemeLocator().cycle(selected: nil)
        var state = DashboardState(sourceName: "nbd+unix:///?socket=/tmp/source.sock", destinationName: "null:",
                                   requestsPerLane: 64, themeNames: cycle.names, themeIndex: cycle.index, glyphs: screen.glyphs,
                                   hint: "press + to add a lane")
        var lanes = 2
        var paused = false
        var tick = 0
        loop: while true {
            tick += 1
            if mode == "crash", tick == 5 { fatalError("smoke test crash with the dashboard open") }
            var snapshot = Fixtures.snapshot(lanes: lanes, stalledLane: tick % 20 < 10 ? 1 : nil, paused: paused)
            snapshot.elapsed = .milliseconds(tick * 100)
            let theme = cycle.themes[state.themeIndex].theme.mapped(to: screen.colorDepth)
            screen.draw(render(snapshot: snapshot, state: state, theme: theme, size: screen.size))
            while let key = screen.readKey(timeoutMilliseconds: 100) {
                switch state.handle(key, latest: snapshot, copyRunning: true) {
                case .addLane?: lanes += 1; state.record(.laneAdded(laneID: lanes), at: snapshot.elapsed)
                case .dropLane(let id)?: state.record(.laneDropped(laneID: id ?? lanes), at: snapshot.elapsed); lanes = max(1, lanes - 1)
                case .setPaused(let value)?: paused = value; state.record(.paused(value), at: snapshot.elapsed)
                case .quit?: break loop
                case nil: break
                }
                let refreshed = render(snapshot: snapshot, state: state, theme: theme, size: screen.size)
                screen.draw(refreshed)
            }
        }
        screen.restore()
        print("dashboard smoke: restored after \(tick) frames, depth \(screen.colorDepth), unicode \(screen.supportsUnicode)")
    }
}
