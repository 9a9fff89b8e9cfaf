import Dashboard
import NBDCopy
import NBDProxy
import Synchronization
import Telemetry

/// The proxy as the dashboard sees it: each client connection a row (its id the row's
/// number), the export's coverage the header's bar, clients coming and going the events.
/// It has no lanes: the dashboard takes only the proxy's keys, so lane and pause calls
/// never come.
final class ProxyTransfer: TransferSource, Sendable {
    private let server: ProxyServer
    private let ended: SessionFlag
    private let onStop: @Sendable () -> Void
    /// Notes since the dashboard last drained them; protected by its own lock (the
    /// session's event loop adds, the dashboard loop drains).
    private let notes = Mutex<[TransferNote]>([])
    /// Each client's name as of the last snapshot, by id; protected by its own lock.
    private let clientNames = Mutex<[Int: String]>([:])
    /// Notes kept at most while the dashboard does not drain them.
    static let maximumNotes = 256

    init(server: ProxyServer, ended: SessionFlag, onStop: @escaping @Sendable () -> Void) {
        self.server = server
        self.ended = ended
        self.onStop = onStop
    }

    var hasEnded: Bool { ended.flag.load(ordering: .acquiring) }

    func snapshot() async -> CopySnapshot {
        let proxy = await server.snapshot()
        let names = Dictionary(proxy.clients.map { ($0.id, $0.client.description) }, uniquingKeysWith: { first, _ in first })
        clientNames.withLock { $0 = names }
        return Self.copySnapshot(proxy)
    }

    /// The client column: `nbdcopy [1234]`, `127.0.0.1:50122`.
    var connectionLabels: [Int: String] { clientNames.withLock { $0 } }

    /// The proxy's figures in the shape the widgets draw: the progress bar is the share of
    /// the export read or written so far, `lanes` the clients connected now out of all seen.
    static func copySnapshot(_ proxy: ProxySnapshot) -> CopySnapshot {
        let coverage = proxy.coverage
        let covered = coverage.map { map in
            UInt64(max(map.fraction(written: false), map.fraction(written: true)) * Double(map.exportSize))
        }
        let readPercent = Int((coverage?.fraction(written: false) ?? 0) * 100)
        let writtenPercent = Int((coverage?.fraction(written: true) ?? 0) * 100)
        var snapshot = CopySnapshot(elapsed: proxy.elapsed, bytesTotal: coverage?.exportSize, bytesDone: covered ?? 0)
        snapshot.bytesPerSecond = proxy.bytesPerSecond
        let seconds = StatsJSON.seconds(proxy.elapsed)
        snapshot.averageBytesPerSecond = seconds > 0 ? Double(proxy.bytesRelayed) / seconds : 0
        snapshot.lanes = proxy.activeClients
        snapshot.maximumLanes = proxy.clients.count
        snapshot.laneLimitReason = "clients now/seen; export read \(readPercent)%, written \(writtenPercent)%"
        snapshot.connections = proxy.clients.map(\.connection)
        return snapshot
    }

    func record(_ event: ProxyEvent, at elapsed: Duration) {
        let note: TransferNote
        switch event {
        case .stall(let id, let oldest, let held):
            note = .event(.stall(laneID: id, side: .source, oldestAge: oldest, held: held), at: elapsed)
        case .clientLeft(_, _, true, _):
            guard let line = ProxyStatsJSON.humanLine(event) else { return }
            note = .text(line, severity: .warning, at: elapsed)
        default:
            guard let line = ProxyStatsJSON.humanLine(event) else { return }
            note = .text(line, severity: .info, at: elapsed)
        }
        notes.withLock { notes in
            notes.append(note)
            if notes.count > Self.maximumNotes { notes.removeFirst(notes.count - Self.maximumNotes) }
        }
    }

    func drainNotes() -> [TransferNote] {
        notes.withLock { notes in
            defer { notes = [] }
            return notes
        }
    }

    // A proxy's clients choose their connections: its key table offers none of these.
    func addLane() {}
    func dropLane(id: Int?) {}
    func resumeAutoLanes() {}
    func setPaused(_ paused: Bool) {}

    func stop() {
        onStop()
    }

    func refreshIntervalChanged(to interval: Duration) {}
}
