import Dashboard
import NBDCopy
import Synchronization

/// Runs the full-screen dashboard over a running engine until the copy ends or the user
/// quits: polls keys, turns key commands into engine calls, draws at the refresh rate.
///
/// ncurses is used from this loop only. Keys are polled without blocking so that the
/// loop never holds one of the few cooperative threads.
final class DashboardSession {
    private let screen: NCursesScreen
    private let themes: ThemeCycle
    private var mappedThemes: [Int: Theme] = [:]
    private var state: DashboardState
    private let engine: CopyEngine
    let events: EventBuffer
    private let startTime: ContinuousClock.Instant

    /// How often keys are polled.
    static let keyPollInterval = Duration.milliseconds(25)

    init(screen: NCursesScreen, themes: ThemeCycle, configuration: CopyConfiguration, engine: CopyEngine,
         events: EventBuffer, startTime: ContinuousClock.Instant) {
        self.screen = screen
        self.themes = themes
        self.engine = engine
        self.events = events
        self.startTime = startTime
        state = DashboardState(sourceName: configuration.source.description, destinationName: configuration.destination.description,
                               requestsPerLane: configuration.options.requestsPerLane, themeNames: themes.names,
                               themeIndex: themes.index, glyphs: screen.glyphs, hint: configuration.hint)
        for skipped in themes.skipped {
            state.log("theme skipped: \(skipped)", severity: .warning, at: .zero)
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
        /// The terminal went away (SIGHUP).
        case hungUp
    }

    /// Draws until `copyEnded` or `hungUp` turns true or the user quits.
    func run(copyEnded: borrowing Atomic<Bool>, hungUp: borrowing Atomic<Bool>) async -> End {
        var latest = await engine.snapshot()
        var nextDraw = ContinuousClock.now
        while !copyEnded.load(ordering: .acquiring) {
            if hungUp.load(ordering: .acquiring) { return .hungUp }
            var redraw = false
            while let key = screen.readKey() {
                redraw = true
                guard let command = state.handle(key, latest: latest, copyRunning: true) else { continue }
                switch command {
                case .addLane:
                    Task { [engine] in _ = try? await engine.addLane() }
                case .dropLane(let laneID):
                    if engine.dropLane(id: laneID) == nil {
                        state.log("cannot drop: the last lane stays", severity: .warning, at: ContinuousClock.now - startTime)
                    }
                case .setPaused(let paused):
                    engine.setPaused(paused)
                case .quit:
                    engine.stop()
                    return .userQuit
                }
            }
            for (event, elapsed) in events.drain() {
                state.record(event, at: elapsed)
                redraw = true
            }
            if ContinuousClock.now >= nextDraw || redraw {
                if ContinuousClock.now >= nextDraw {
                    latest = await engine.snapshot()
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

    /// The terminal is gone: drops the screen without writing to it, and stops keeping
    /// events for it.
    func abandon() {
        screen.abandon()
        events.close()
    }
}
