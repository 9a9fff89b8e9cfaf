import NBD
import NIOCore
import Telemetry

/// One source connection paired with one destination connection, copying what the
/// planner hands it. Lives on one event loop; nothing here takes a lock.
///
/// A work item is read from the source, split into data and zero segments, and written
/// to the destination; it counts as done when the destination acknowledged every segment.
/// Dropping drains (no new work, finish what is in flight, disconnect politely); a failed
/// connection gives every unfinished item back to the planner for other lanes.
///
/// With `--reconnect`, a connection that breaks is opened again (`LaneSettings.reconnect`):
/// only the items that needed it go back, and when it was the destination, so does the
/// work it acknowledged since the last checkpoint FLUSH, which may never have reached
/// storage (`UnflushedWrites`).
final class Lane {
    enum State: Equatable {
        case active, draining, idle, closed, failed
    }

    /// An item being copied, and the destination requests it still waits for.
    struct ActiveItem {
        var item: WorkItem
        /// Still waiting for the source's READ (a zero item never reads).
        var reading: Bool
        var pendingWrites = 0
        var zeroedBytes: UInt64 = 0
        var skippedBytes: UInt64 = 0
        var doneBytes: UInt64
    }

    // The state below is changed only by the lane's own files (Lane+*.swift), on its
    // event loop: it is internal because Swift has no access level for a group of files.
    let id: Int
    let eventLoop: any EventLoop
    /// nil while that side reconnects.
    var source: (any EndpointConnection)?
    var destination: (any EndpointConnection)?
    let sourceStats: ConnectionStats
    let destinationStats: ConnectionStats
    let endpoints: LaneEndpoints
    let planner: Planner
    let settings: LaneSettings
    let delegate: any LaneDelegate
    let imageEnd: () -> UInt64?

    var state = State.active
    var items: [Int: ActiveItem] = [:]
    var nextItemID = 0
    var inFlightBytes: UInt64 = 0
    var pumping = false
    var pumpAgain = false
    var waitingForPlanner = false
    var paused = false
    var stallTimer: RepeatedTask?
    var reconnects: [ConnectionSide: ReconnectBackoff] = [:]
    var reconnectTimers: [ConnectionSide: Scheduled<Void>] = [:]
    var unflushed = UnflushedWrites()
    /// The copy is stopping: data that arrives from the source is not written any more.
    var discardingReads = false
    lazy var zeroBuffer: ByteBuffer = {
        var buffer = ByteBufferAllocator().buffer(capacity: Int(settings.requestSize))
        buffer.writeRepeatingByte(0, count: Int(settings.requestSize))
        return buffer
    }()

    /// How often stall states are re-evaluated.
    private static let stallCheckInterval = TimeAmount.milliseconds(20)

    init(id: Int, source: any EndpointConnection, destination: any EndpointConnection, endpoints: LaneEndpoints,
         planner: Planner, settings: LaneSettings, delegate: any LaneDelegate) {
        self.id = id
        self.eventLoop = source.eventLoop
        self.source = source
        self.destination = destination
        self.endpoints = endpoints
        self.planner = planner
        self.settings = settings
        self.delegate = delegate
        self.imageEnd = { planner.imageSize }
        let now = NIODeadline.now()
        sourceStats = ConnectionStats(laneID: id, side: .source, stallThreshold: settings.stallThreshold,
                                      slowThreshold: settings.slowThreshold, now: now)
        destinationStats = ConnectionStats(laneID: id, side: .destination, stallThreshold: settings.stallThreshold,
                                           slowThreshold: settings.slowThreshold, now: now)
    }

    func stats(_ side: ConnectionSide) -> ConnectionStats {
        side == .source ? sourceStats : destinationStats
    }

    func connection(_ side: ConnectionSide) -> (any EndpointConnection)? {
        side == .source ? source : destination
    }

    var isRunning: Bool { state == .active || state == .idle }

    // MARK: Control (all on the event loop)

    func start(paused: Bool) {
        self.paused = paused
        sourceStats.state = .active
        destinationStats.state = .active
        let loopBound = NIOLoopBound(self, eventLoop: eventLoop)
        stallTimer = eventLoop.scheduleRepeatedTask(initialDelay: Self.stallCheckInterval, delay: Self.stallCheckInterval) { _ in
            loopBound.value.checkStalls()
        }
        if let destination { watchForClose(of: destination) }
        pump()
    }

    func setPaused(_ paused: Bool) {
        self.paused = paused
        if !paused { pump() }
    }

    /// Stops taking work; closes once what is in flight has finished. A side that is
    /// reconnecting stops trying. `discardingReads` (the copy stops): reads still in flight
    /// are awaited but not written, so a stop does not wait for a second round of writes.
    func drain(discardingReads: Bool = false) {
        if discardingReads { self.discardingReads = true }
        guard isRunning else {
            if state == .draining { closeIfDrained() }
            return
        }
        state = .draining
        stopReconnecting()
        for side in [ConnectionSide.source, .destination] where connection(side) != nil {
            stats(side).state = .draining
        }
        closeIfDrained()
    }

    /// Cuts the lane at once (the copy is stopping and the drain took too long): work goes
    /// back, connections are cut, and the lane reports itself closed.
    func abort(reason: String) {
        guard state != .failed && state != .closed else { return }
        fail(reason: reason, notify: false)
        delegate.laneClosed(id, final: snapshots(now: .now()))
    }

    /// Sends a FLUSH on the destination connection: the final one or a checkpoint.
    func flushDestination(completion: @escaping (Result<Void, EndpointError>) -> Void) {
        guard let destination, state != .failed, state != .closed else {
            completion(.failure(EndpointError(.connection, "\(endpoints.destination.displayName): no open connection to flush on")))
            return
        }
        let token = destinationStats.requestSent(bytes: 0, now: .now())
        destination.flush { result in
            self.answered(token, on: .destination, result, .flush, offset: 0, length: 0)
            // A FLUSH that lost its connection says that what the connection acknowledged
            // may be lost: it breaks like any other request's (and reconnects).
            if case .failure(let error) = result, error.kind == .connection, self.destination === destination {
                self.connectionBroke(.destination, error)
            }
            completion(result)
        }
    }

    /// A checkpoint FLUSH of `generation` was acknowledged: what was completed before it is durable.
    func checkpointReached(_ generation: UInt64) {
        unflushed.checkpointReached(generation)
    }

    func snapshots(now: NIODeadline) -> [ConnectionSnapshot] {
        [sourceStats.snapshot(now: now), destinationStats.snapshot(now: now)]
    }
}

/// Both endpoints of a copy, for a lane that must open a connection again.
struct LaneEndpoints: Sendable {
    let source: any CopyEndpoint
    let destination: any CopyEndpoint

    func endpoint(_ side: ConnectionSide) -> any CopyEndpoint {
        side == .source ? source : destination
    }
}
