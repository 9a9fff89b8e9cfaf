import Telemetry
/// The life of one copy as a plain value: each input returns the actions the engine must
/// then perform, outside its lock (the shape of swift-nio's state machines).
///
/// ```
/// idle ─start─► running ─all lanes idle─► flushing ─ack─► closing ─lanes closed─► closingEndpoints ─► done
///                  │   ◄──a lane got work back, or its connection broke (--reconnect)──┘  ▲
///                  └──stop / failure / no lanes left──► stopping ─lanes closed or timeout─┘
/// ```
///
/// Every way a copy can end goes through here, so there is one result, decided once:
/// - a stop before the start, while running, or during the final flush ends the copy with
///   the stop's reason (`interrupted`); once the flush has been acknowledged the copy has
///   succeeded, and a later stop changes nothing;
/// - the final flush goes to a lane that is open (not draining, not closed), after every
///   lane went idle, i.e. after every write reply arrived;
/// - `flush` in the result is `.acknowledged` only when a FLUSH was acknowledged (or fsync
///   returned).
struct CopyLifecycle {
    enum Phase: Equatable, Sendable {
        case idle, running, flushing, closing, stopping, closingEndpoints, done
    }

    /// What the engine must do; performed in order, outside the lock.
    enum Action: Equatable, Sendable {
        /// A lane finished opening while the copy runs: set it going.
        case startLane(Int)
        /// A lane finished opening after the copy stopped: cut it.
        case discardLane(Int)
        /// Send the final FLUSH through this lane's destination connection.
        case flush(laneID: Int)
        /// No new work for these lanes: finish what is in flight, disconnect politely.
        case drain([Int])
        /// The copy stops: as `drain`, but data still being read is not written (its items
        /// go back); writes already sent finish.
        case cancel([Int])
        /// Cut these lanes now; their work is given back.
        case abort([Int])
        /// Call `drainTimedOut` after this long.
        case scheduleDrainTimeout(Duration)
        case closeEndpoints
        /// The copy is over: report `CopyOutcome`.
        case complete(CopyOutcome)
    }

    /// What becomes of a request to open a lane.
    enum LaneReservation: Equatable {
        case open(id: Int)
        case refused(String)
    }

    private struct LaneStatus {
        var draining = false
        var idle = false
    }

    /// Options that decide how the copy ends.
    struct Configuration: Sendable {
        /// The user wants a final flush (`--flush`, the default).
        var flushWanted: Bool
        /// The destination can flush at all.
        var destinationCanFlush: Bool
        /// Lanes the endpoints allow at most, and why.
        var maximumLanes: Int
        var laneLimitReason: String
    }

    private let configuration: Configuration
    private(set) var phase = Phase.idle
    private var lanes: [Int: LaneStatus] = [:]
    /// Lanes reserved and still connecting.
    private var opening: Set<Int> = []
    private var nextLaneID = 1
    private var everOpened = false
    private var outcome: CopyOutcome?
    /// Why the copy stops, once a stop or failure came (the first one wins).
    private var stopReason: CopyError?
    private var flushLaneID: Int?
    /// A lane got work back while the final flush was in flight: it does not cover that work.
    private var flushOvertaken = false
    private var lastLaneFailure = ""

    init(_ configuration: Configuration) {
        self.configuration = configuration
    }

    /// Open lanes (not draining), for the snapshot.
    var openLaneCount: Int { lanes.values.filter { !$0.draining }.count }

    /// Every lane that has not closed yet, in id order.
    var laneIDs: [Int] { lanes.keys.sorted() }

    /// Lanes open and not draining, in id order.
    var openLaneIDs: [Int] { lanes.filter { !$0.value.draining }.keys.sorted() }

    // MARK: Starting

    /// The copy begins; false when it was stopped before it could.
    mutating func start() -> Bool {
        guard phase == .idle else { return false }
        phase = .running
        return true
    }

    /// A lane is about to be opened: its id, or why not.
    mutating func reserveLane() -> LaneReservation {
        guard phase == .running else { return .refused("the copy is finishing") }
        guard openLaneCount + opening.count < configuration.maximumLanes else {
            let limit = configuration.maximumLanes
            return .refused(limit == 1 ? "\(configuration.laneLimitReason): one connection only"
                                       : "already at \(limit) lanes (\(configuration.laneLimitReason))")
        }
        defer { nextLaneID += 1 }
        opening.insert(nextLaneID)
        return .open(id: nextLaneID)
    }

    mutating func laneOpened(_ id: Int) -> [Action] {
        opening.remove(id)
        guard phase == .running else { return [.discardLane(id)] + endIfNothingLeft() }
        lanes[id] = LaneStatus()
        everOpened = true
        return [.startLane(id)]
    }

    mutating func laneOpenFailed(_ id: Int, reason: String) -> [Action] {
        opening.remove(id)
        lastLaneFailure = reason
        if phase == .running, lanes.isEmpty, opening.isEmpty {
            return stop(everOpened ? .noLanesLeft(reason) : .failed(reason), drainTimeout: .zero)
        }
        return afterLaneChange()
    }

    // MARK: Lanes

    /// The planner is finished and the lane has nothing in flight.
    mutating func laneIdle(_ id: Int) -> [Action] {
        lanes[id]?.idle = true
        return afterLaneChange()
    }

    /// An idle lane has work again (ranges came back to the planner).
    mutating func laneBusy(_ id: Int) {
        lanes[id]?.idle = false
        if phase == .flushing { flushOvertaken = true }
    }

    /// The user drops a lane (the newest open one when `id` is nil): the lane to drain, or
    /// nil when it cannot be dropped (the last open lane stays, and only while running).
    mutating func dropLane(_ id: Int?) -> Int? {
        let open = openLaneIDs
        guard phase == .running, open.count > 1, let target = id ?? open.last, open.contains(target) else { return nil }
        lanes[target]?.draining = true
        return target
    }

    /// A lane drained and closed, or was cut.
    mutating func laneClosed(_ id: Int) -> [Action] {
        lanes[id] = nil
        return afterLaneChange()
    }

    /// A lane's connection failed for good; its work went back to the planner.
    mutating func laneFailed(_ id: Int, reason: String) -> [Action] {
        lanes[id] = nil
        lastLaneFailure = reason
        if (phase == .running || phase == .flushing), lanes.isEmpty, opening.isEmpty {
            return stop(.noLanesLeft(reason), drainTimeout: .zero)
        }
        return afterLaneChange()
    }

    private mutating func afterLaneChange() -> [Action] {
        switch phase {
        case .running:
            return finishIfAllIdle()
        case .closing, .stopping:
            return endIfNothingLeft()
        case .idle, .flushing, .closingEndpoints, .done:
            return []
        }
    }

    /// Once every lane is idle (so every write reply arrived; a dropped lane that still
    /// drains owes replies and must close first), flush on an open lane, or close.
    private mutating func finishIfAllIdle() -> [Action] {
        guard opening.isEmpty, lanes.values.allSatisfy(\.idle),
              let flusher = lanes.filter({ !$0.value.draining }).keys.min() else { return [] }
        guard configuration.flushWanted, configuration.destinationCanFlush else {
            let flush: CopyOutcome.Flush = configuration.flushWanted ? .unsupported : .notRequested
            return close(with: CopyOutcome(error: nil, flush: flush))
        }
        phase = .flushing
        flushLaneID = flusher
        flushOvertaken = false
        return [.flush(laneID: flusher)]
    }

    // MARK: The final flush

    mutating func flushSucceeded() -> [Action] {
        guard phase == .flushing else { return [] }
        flushLaneID = nil
        if let stopReason {
            return beginStopping(CopyOutcome(error: stopReason, flush: .acknowledged))
        }
        if flushOvertaken {
            phase = .running
            return finishIfAllIdle()
        }
        return close(with: CopyOutcome(error: nil, flush: .acknowledged))
    }

    /// The final flush's connection broke, and lanes reconnect (`--reconnect`): the writes
    /// it acknowledged since the last checkpoint went back to the planner, and the lane is
    /// busy again. The copy runs on; the flush is sent again once every lane is idle.
    mutating func flushConnectionLost(_ reason: String) -> [Action] {
        guard phase == .flushing else { return [] }
        guard stopReason == nil else { return flushFailed(reason) }
        flushLaneID = nil
        phase = .running
        return finishIfAllIdle()
    }

    mutating func flushFailed(_ reason: String) -> [Action] {
        guard phase == .flushing else { return [] }
        flushLaneID = nil
        let error = stopReason ?? .failed("flush failed: \(reason)")
        return beginStopping(CopyOutcome(error: error, flush: .failed))
    }

    // MARK: Stopping

    /// Stop with `reason` (Ctrl-C, a fatal request error, no lanes left); the first reason
    /// wins. Lanes get `drainTimeout` to finish what is in flight before they are cut.
    mutating func stop(_ reason: CopyError, drainTimeout: Duration) -> [Action] {
        switch phase {
        case .idle:
            stopReason = reason
            outcome = CopyOutcome(error: reason, flush: .notReached)
            phase = .closingEndpoints
            return [.closeEndpoints]
        case .running:
            stopReason = reason
            return beginStopping(CopyOutcome(error: reason, flush: .notReached), drainTimeout: drainTimeout)
        case .flushing:
            // The flush in flight is let finish (cutting it gains nothing), but it no longer
            // decides the result; the drain timeout bounds how long it may take.
            guard stopReason == nil else { return [] }
            stopReason = reason
            return [.scheduleDrainTimeout(drainTimeout)]
        case .closing, .stopping, .closingEndpoints, .done:
            return []
        }
    }

    /// The lanes did not finish in time: cut them.
    mutating func drainTimedOut() -> [Action] {
        switch phase {
        case .stopping, .flushing:
            return lanes.isEmpty ? [] : [.abort(laneIDs)]
        default:
            return []
        }
    }

    private mutating func beginStopping(_ result: CopyOutcome, drainTimeout: Duration = .seconds(5)) -> [Action] {
        outcome = result
        phase = .stopping
        if lanes.isEmpty && opening.isEmpty { return endIfNothingLeft() }
        return [.cancel(laneIDs), .scheduleDrainTimeout(drainTimeout)]
    }

    private mutating func close(with result: CopyOutcome) -> [Action] {
        outcome = result
        phase = .closing
        if lanes.isEmpty { return endIfNothingLeft() }
        return [.drain(laneIDs)]
    }

    private mutating func endIfNothingLeft() -> [Action] {
        guard phase == .closing || phase == .stopping, lanes.isEmpty, opening.isEmpty else { return [] }
        phase = .closingEndpoints
        return [.closeEndpoints]
    }

    /// The endpoints are closed: the copy is over.
    mutating func endpointsClosed() -> [Action] {
        guard phase == .closingEndpoints else { return [] }
        phase = .done
        return [.complete(outcome ?? CopyOutcome(error: stopReason ?? .failed(lastLaneFailure), flush: .notReached))]
    }
}
