import Control
import Dashboard
import Synchronization

/// The top-like list of running copies on the full screen, refreshed live, until the user
/// picks one (Enter) or quits (`q`).
///
/// The control folder is read by a task of its own, once a second (each running copy is
/// asked over its socket), so that keys are never held up by a slow copy.
final class CopyListSession {
    private let screen: NCursesScreen
    private let theme: Theme
    private var state = CopyListState()

    /// How often the folder is read again.
    static let refreshInterval = Duration.seconds(1)

    init(screen: NCursesScreen, theme: Theme) {
        self.screen = screen
        self.theme = theme.mapped(to: screen.colorDepth)
    }

    /// Reads the running copies into `latest` once a second until cancelled.
    private static func read(into latest: LatestListing) -> Task<Void, any Error> {
        Task {
            let directory = ControlDirectory.standard
            while !Task.isCancelled {
                let running = (try? directory.existsAndIsTrusted()) == true
                    ? await directory.transfers().filter { $0.state == .running } : []
                latest.listing.withLock { $0 = running }
                try await Task.sleep(for: refreshInterval)
            }
        }
    }

    /// Shows the list until a copy is chosen (its socket) or the user quits (nil), or a
    /// signal sets `interrupted` (nil).
    func run(interrupted: borrowing Atomic<Bool>) async -> String? {
        let latest = LatestListing()
        let reader = Self.read(into: latest)
        defer { reader.cancel() }
        var sockets: [Int32: String] = [:]
        var redraw = true
        while !interrupted.load(ordering: .acquiring) {
            if let transfers = latest.listing.withLock({ value in defer { value = nil }; return value }) {
                state.update(transfers.map { CopyListState.Entry(pid: $0.pid, line: ListCommand.line($0)) })
                sockets = Dictionary(transfers.map { ($0.pid, $0.socket ?? "") }, uniquingKeysWith: { first, _ in first })
                redraw = true
            }
            while let key = screen.readKey() {
                redraw = true
                switch state.handle(key) {
                case .attach(let pid)?: return sockets[pid]
                case .quit?: return nil
                case nil: break
                }
            }
            if redraw {
                screen.draw(renderCopyList(state, theme: theme, size: screen.size))
                redraw = false
            }
            try? await Task.sleep(for: DashboardSession.keyPollInterval)
        }
        return nil
    }
}

/// The copies the reader task found last, until the screen loop takes them.
private final class LatestListing: Sendable {
    let listing = Mutex<[TransferSummary]?>(nil)
}
