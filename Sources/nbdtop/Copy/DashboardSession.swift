import Dashboard
import Synchronization

/// Runs the full-screen dashboard over a running copy, in this process or attached to
/// another's control socket (`TransferSource`), until the copy ends or the user quits or
/// detaches: polls keys, turns key commands into calls on the source, draws at the
/// refresh rate.
///
/// ncurses is used from this loop only. Keys are polled without blocking so that the
/// loop never holds one of the few cooperative threads.
final class DashboardSession {
    private let screen: NCursesScreen
    private let themes: ThemeCycle
    private var mappedThemes: [Int: Theme] = [:]
    private var state: DashboardState
    private let source: any TransferSource

    /// How often keys are polled.
    static let keyPollInterval = Duration.milliseconds(25)

    /// Where F2 saves the dashboard's choices; nil without `XDG_CONFIG_HOME` and `HOME`.
    private let settingsPath = DashboardSettings.path(environment: ProcessEnvironment.current())

    /// `attached`: the copy runs in another process, so `q` detaches and `S` stops it.
    /// `themeFromCommandLine`: `--theme` was given, so it wins over `nbdtop.conf`'s.
    init(screen: NCursesScreen, themes: ThemeCycle, source: any TransferSource, sourceName: String, destinationName: String,
         requestsPerLane: Int, hint: String? = nil, attached: Bool = false, proxy: Bool = false, tls: String? = nil,
         themeFromCommandLine: Bool = false) {
        self.screen = screen
        self.themes = themes
        self.source = source
        state = DashboardState(sourceName: sourceName, destinationName: destinationName,
                               requestsPerLane: requestsPerLane, themeNames: themes.names,
                               themeIndex: themes.index, glyphs: screen.glyphs, hint: hint, attached: attached)
        state.proxy = proxy
        state.tls = tls
        for skipped in themes.skipped {
            state.log("theme skipped: \(skipped)", severity: .warning, at: .zero)
        }
        if let settingsPath {
            let (settings, warning) = DashboardSettings.load(path: settingsPath)
            state.apply(settings, theme: !themeFromCommandLine)
            if let warning { state.log(warning, severity: .warning, at: .zero) }
        }
    }

    /// F2: writes the current choices to `nbdtop.conf` and says where, or why not.
    private func save(_ settings: DashboardSettings, at elapsed: Duration) {
        guard let settingsPath else {
            state.log("settings not saved: neither XDG_CONFIG_HOME nor HOME is set", severity: .warning, at: elapsed)
            return
        }
        do {
            try settings.save(path: settingsPath)
            state.log("settings saved to \(settingsPath)", severity: .ok, at: elapsed)
        } catch {
            state.log("settings not saved to \(settingsPath): \(error)", severity: .error, at: elapsed)
        }
    }

    private func theme(_ index: Int) -> Theme {
        if let theme = mappedThemes[index] { return theme }
        let theme = themes.themes[index].theme.mapped(to: screen.colorDepth)
        mappedThemes[index] = theme
        return theme
    }

    /// Why `run` returned.
    enum End {
        case copyEnded
        /// `q` `y`: the engine was told to stop.
        case userQuit
        /// `q` while attached: the copy goes on.
        case detached
        /// The terminal went away (SIGHUP).
        case hungUp
    }

    /// Draws until the copy ends, `hungUp` turns true (the terminal went away; attached,
    /// also a signal asking to leave), or the user quits or detaches.
    func run(hungUp: borrowing Atomic<Bool>) async -> End {
        var latest = await source.snapshot()
        state.observe(latest)
        var nextDraw = ContinuousClock.now
        source.refreshIntervalChanged(to: state.refreshInterval)
        while !source.hasEnded {
            if hungUp.load(ordering: .acquiring) { return .hungUp }
            var redraw = false
            while let key = screen.readKey() {
                redraw = true
                let interval = state.refreshInterval
                let command = state.handle(key, latest: latest, copyRunning: true, size: screen.size)
                if state.refreshInterval != interval { source.refreshIntervalChanged(to: state.refreshInterval) }
                guard let command else { continue }
                switch command {
                case .addLane:
                    source.addLane()
                case .dropLane(let laneID):
                    source.dropLane(id: laneID)
                case .resumeAutoLanes:
                    source.resumeAutoLanes()
                case .setPaused(let paused):
                    source.setPaused(paused)
                case .stopCopy:
                    source.stop()
                    state.log("stopping the copy", at: latest.elapsed)
                case .quit:
                    source.stop()
                    return .userQuit
                case .detach:
                    return .detached
                case .saveSettings(let settings):
                    save(settings, at: latest.elapsed)
                }
            }
            for note in source.drainNotes() {
                switch note {
                case .event(let event, let elapsed): state.record(event, at: elapsed)
                case .text(let text, let severity, let elapsed): state.log(text, severity: severity, at: elapsed)
                }
                redraw = true
            }
            if ContinuousClock.now >= nextDraw || redraw {
                if ContinuousClock.now >= nextDraw {
                    latest = await source.snapshot()
                    state.observe(latest)
                    state.connectionLabels = source.connectionLabels
                    nextDraw = ContinuousClock.now + state.refreshInterval
                }
                screen.draw(render(snapshot: state.displayed(latest), state: state, theme: theme(state.themeIndex), size: screen.size))
            }
            try? await Task.sleep(for: Self.keyPollInterval)
        }
        return .copyEnded
    }

    /// Gives the terminal back (idempotent).
    func restore() {
        screen.restore()
    }

    /// The terminal is gone: drops the screen without writing to it.
    func abandon() {
        screen.abandon()
    }
}
