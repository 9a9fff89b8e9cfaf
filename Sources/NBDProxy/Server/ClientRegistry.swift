import NIOCore
import Synchronization

/// The proxy's client connections: those connected, reachable on their event loops, and
/// the last figures of those that left.
final class ClientRegistry: Sendable {
    struct Live: Sendable {
        let eventLoop: any EventLoop
        let pair: NIOLoopBound<RelayPair>
    }

    private struct State {
        var nextID = 1
        var live: [Int: Live] = [:]
        var departed: [ClientSnapshot] = []
    }

    private let maximumDeparted: Int
    /// Protected by its own lock; taken per connection and per snapshot, not per request.
    private let state = Mutex(State())

    init(maximumDeparted: Int) {
        self.maximumDeparted = maximumDeparted
    }

    func nextID() -> Int {
        state.withLock { state in
            defer { state.nextID += 1 }
            return state.nextID
        }
    }

    func add(id: Int, _ live: Live) {
        state.withLock { state in
            guard !state.departed.contains(where: { $0.id == id }) else { return }
            state.live[id] = live
        }
    }

    /// A client left: its last figures stay, with rates of 0 (it moves nothing any more).
    func left(_ snapshot: ClientSnapshot) {
        var snapshot = snapshot
        snapshot.connection.bytesPerSecond = 0
        snapshot.readBytesPerSecond = 0
        snapshot.writeBytesPerSecond = 0
        state.withLock { state in
            state.live[snapshot.id] = nil
            state.departed.append(snapshot)
            if state.departed.count > maximumDeparted { state.departed.removeFirst(state.departed.count - maximumDeparted) }
        }
    }

    var activeCount: Int { state.withLock { $0.live.count } }

    /// Every client's figures, in the order they came.
    func snapshots() async -> [ClientSnapshot] {
        let (live, departed) = state.withLock { ($0.live, $0.departed) }
        var snapshots = departed
        for (_, client) in live {
            let pair = client.pair
            if let snapshot = try? await client.eventLoop.submit({ pair.value.figures.snapshot(now: .now()) }).get() {
                snapshots.append(snapshot)
            }
        }
        // A client may have left between the two reads: keep its final figures only.
        var seen = Set<Int>()
        return snapshots.filter { seen.insert($0.id).inserted }.sorted { $0.id < $1.id }
    }

    /// Ends every live connection.
    func closeAll() async {
        let live = state.withLock { $0.live }
        for (_, client) in live {
            let pair = client.pair
            try? await client.eventLoop.submit { pair.value.end(failed: false, reason: "the proxy stopped") }.get()
        }
    }
}
