import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Telemetry

/// Runs a copy from one endpoint to another over lanes that can be added and dropped
/// while it runs, and publishes what it is doing.
///
/// Control is async (start, add, drop, pause, stop, snapshot); the per-request work
/// happens in lanes on their event loops. How the copy starts and ends is decided by one
/// `CopyLifecycle` value: every input (a lane idle, closed or failed, a stop, the flush's
/// answer, a timeout) goes to it under the lock, and the actions it returns are performed
/// after the lock is released. The hot path never takes the lock.
public final class CopyEngine: @unchecked Sendable {
    public let source: any CopyEndpoint
    public let destination: any CopyEndpoint
    public let options: CopyOptions
    /// Events as they happen; finishes when the copy ends.
    public let events: AsyncStream<CopyEvent>

    /// The most lanes the endpoints allow, and why.
    public let maximumLanes: Int
    public let laneLimitReason: String
    /// Lanes the copy starts with, and the request size it starts with.
    public let initialLanes: Int
    public let initialRequestSize: UInt64

    private let eventContinuation: AsyncStream<CopyEvent>.Continuation
    private let group: any EventLoopGroup
    private let planner: Planner
    private let settings: LaneSettings
    private let finished: EventLoopPromise<CopyOutcome>
    private let startTime = ContinuousClock.now
    /// The event loop of the first lane: the one both endpoints were opened on, so that the
    /// first lane reuses the connections that learned the endpoints' facts.
    private let firstEventLoop: (any EventLoop)?

    /// The bottleneck rules' history and the CPU readings; its own lock, so that reading
    /// procfs never holds the engine's.
    private let judgement: NIOLockedValueBox<(tracker: BottleneckTracker, cpu: EventLoopCPU)>

    private let lock = NIOLock()
    // Protected by `lock`:
    private var lifecycle: CopyLifecycle
    private var lanes: [Int: NIOLoopBound<Lane>] = [:]
    private var endedLanes: [Int: [ConnectionSnapshot]] = [:]
    private var paused = false
    private var checkpoint = CheckpointSchedule()
    private var checkpointTimer: RepeatedTask?
    private var tuning: TuningState

    public init(source: any CopyEndpoint, destination: any CopyEndpoint, options: CopyOptions,
                group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                firstEventLoop: (any EventLoop)? = nil) throws {
        self.firstEventLoop = firstEventLoop
        self.source = source
        self.destination = destination
        self.options = options
        self.group = group
        (events, eventContinuation) = AsyncStream.makeStream(of: CopyEvent.self)
        finished = group.next().makePromise()

        let (limit, reason) = Self.laneLimit(source: source, destination: destination)
        maximumLanes = limit
        laneLimitReason = reason
        lifecycle = CopyLifecycle(CopyLifecycle.Configuration(
            flushWanted: options.flush, destinationCanFlush: destination.canFlush,
            maximumLanes: limit, laneLimitReason: reason))

        let sourceConstraints = source.constraints, destinationConstraints = destination.constraints
        let alignment = UInt64(max(sourceConstraints.minimum, destinationConstraints.minimum))
        let maximum = UInt64(min(sourceConstraints.maximum, destinationConstraints.maximum))
        let requestSizes: [UInt64]
        var ordinaryLargestSize = UInt64.max, largestFittedSize = UInt64.max
        if options.autoRequestSize {
            let ladder = RequestSizeLadder(source: sourceConstraints, destination: destinationConstraints,
                                           queueSize: options.queueSize)
            requestSizes = ladder.sizes
            ordinaryLargestSize = ladder.ordinaryLargestSize
            largestFittedSize = ladder.largestFittedSize
        } else {
            var requestSize = min(options.requestSize, maximum)
            requestSize -= requestSize % alignment
            guard requestSize > 0 else {
                throw CopyError.incompatible("request size \(options.requestSize) does not fit the endpoints' block sizes (alignment \(alignment), maximum \(maximum))")
            }
            requestSizes = [requestSize]
        }
        let requestSize = requestSizes[0]
        initialRequestSize = requestSize
        let autoLaneLimit = max(1, min(limit, options.maximumAutoLanes))
        tuning = TuningState(tuner: AutoTuner(AutoTuner.Configuration(
            maximumLanes: autoLaneLimit, tunesLanes: options.autoLanes,
            initialLanes: max(1, min(options.connections, options.autoLanes ? autoLaneLimit : limit)),
            requestSizes: requestSizes, ordinaryLargestSize: ordinaryLargestSize, largestFittedSize: largestFittedSize)))
        initialLanes = tuning.tuner.lanes
        var granularity = destination.discardsWrites ? 0 : options.sparseGranularity
        if granularity > 0, granularity % UInt64(destinationConstraints.minimum) != 0 {
            granularity += UInt64(destinationConstraints.minimum) - granularity % UInt64(destinationConstraints.minimum)
        }
        let skipZeroes = options.destinationIsZero || destination.startsZeroed
        judgement = NIOLockedValueBox((BottleneckTracker(limits: BottleneckLimits(
            requestsPerLane: options.requestsPerLane, queueSizeBytes: options.queueSize, requestSizeBytes: requestSize)),
                                       EventLoopCPU()))
        planner = Planner(Planner.Configuration(
            size: source.size,
            requestSize: requestSize,
            alignment: alignment,
            useExtents: options.useExtents && source.canReportExtents && source.size != nil,
            extentsWindow: max(options.extentsWindow - options.extentsWindow % alignment, alignment),
            maximumZeroLength: destination.canZero ? (1 << 30) : requestSize,
            skipZeroRanges: skipZeroes))
        let tracksUnflushed = options.reconnect != nil && destination.canReconnect && destination.canFlush
        settings = LaneSettings(
            maximumRequests: max(1, options.requestsPerLane),
            maximumBytes: max(1, options.queueSize),
            sparseGranularity: granularity,
            skipZeroes: skipZeroes,
            destinationCanZero: destination.canZero,
            allocate: options.allocated,
            destinationAlignment: UInt64(destinationConstraints.minimum),
            retries: options.retries,
            requestSize: requestSize,
            stallThreshold: options.stallThreshold,
            slowThreshold: options.slowThreshold,
            sourceIsStream: source.size == nil,
            reconnect: options.reconnect,
            checkpoints: tracksUnflushed ? CheckpointGeneration() : nil)
    }

    private static func laneLimit(source: any CopyEndpoint, destination: any CopyEndpoint) -> (Int, String) {
        if source.isSequential { return (1, "source: \(source.connectionLimitReason)") }
        if destination.isSequential { return (1, "destination: \(destination.connectionLimitReason)") }
        if source.maximumConnections <= destination.maximumConnections {
            return (source.maximumConnections, "source: \(source.connectionLimitReason)")
        }
        return (destination.maximumConnections, "destination: \(destination.connectionLimitReason)")
    }

    // MARK: Running

    /// Copies the whole image; returns when it arrived (and was flushed), throws `CopyError`.
    public func run() async throws -> CopySummary {
        defer { eventContinuation.finish() }
        do {
            try checkCompatibility()
        } catch {
            perform(lock.withLock { lifecycle.stop(error as? CopyError ?? .failed("\(error)"), drainTimeout: .zero) })
        }
        if lock.withLock({ lifecycle.start() }) {
            let initial = lock.withLock { tuning.tuner.lanes }
            for _ in 0..<initial {
                guard case .open(let id) = lock.withLock({ lifecycle.reserveLane() }) else { break }
                _ = try? await openLane(id)
            }
            startCheckpoints()
            startTuning()
        }
        let outcome = try await finished.futureResult.get()
        if let error = outcome.error { throw error }
        return CopySummary(snapshot: await snapshot(), flush: outcome.flush)
    }

    /// How the copy ended, once it has.
    public var outcome: CopyOutcome? {
        get async { try? await finished.futureResult.get() }
    }

    private func checkCompatibility() throws {
        if destination.isReadOnly {
            throw CopyError.incompatible("destination \(destination.displayName) is read-only")
        }
        if let sourceSize = source.size, let destinationSize = destination.size, sourceSize > destinationSize {
            throw CopyError.incompatible("source \(source.displayName) (\(sourceSize) bytes) is larger than destination \(destination.displayName) (\(destinationSize) bytes)")
        }
    }

    // MARK: Lanes

    /// Opens a lane and starts it, for a user: lanes are manual from then on (auto-tuning
    /// of lanes stops until `resumeAutoLanes`). Returns its id or throws `CopyError`.
    @discardableResult
    public func addLane() async throws -> Int {
        switch lock.withLock({ lifecycle.reserveLane() }) {
        case .open(let id):
            lanesSetByUser()
            return try await openLane(id)
        case .refused(let reason):
            eventContinuation.yield(.laneRefused(reason: reason))
            throw CopyError.failed("cannot add a lane: \(reason)")
        }
    }

    private func openLane(_ id: Int) async throws -> Int {
        let eventLoop = (id == 1 ? firstEventLoop : nil) ?? leastBusyEventLoop()
        do {
            let sourceConnection = try await source.connect(on: eventLoop)
            let destinationConnection: NIOLoopBound<any EndpointConnection>
            do {
                destinationConnection = try await destination.connect(on: sourceConnection.eventLoop)
            } catch {
                sourceConnection.eventLoop.execute { sourceConnection.value.abort() }
                throw error
            }
            let endpoints = LaneEndpoints(source: source, destination: destination)
            let lane = try await sourceConnection.eventLoop.submit { [planner, settings] in
                NIOLoopBound(Lane(id: id, source: sourceConnection.value, destination: destinationConnection.value,
                                  endpoints: endpoints, planner: planner, settings: settings, delegate: self),
                             eventLoop: sourceConnection.eventLoop)
            }.get()
            perform(lock.withLock {
                lanes[id] = lane
                return lifecycle.laneOpened(id)
            })
            return id
        } catch {
            let reason = "\(error)"
            eventContinuation.yield(.laneFailed(laneID: id, reason: reason))
            perform(lock.withLock { lifecycle.laneOpenFailed(id, reason: reason) })
            throw CopyError.failed(reason)
        }
    }

    /// The event loop with the fewest lanes, so lanes spread over every core.
    /// (`group.next()` is round-robin over every caller, so it can put two lanes on one loop.)
    private func leastBusyEventLoop() -> any EventLoop {
        let loops = Array(group.makeIterator())
        guard !loops.isEmpty else { return group.next() }
        let busy = lock.withLock { lanes.values.map(\.eventLoop) }
        return loops.min { candidate, other in
            busy.filter { $0 === candidate }.count < busy.filter { $0 === other }.count
        }!
    }

    /// Drains a lane (the newest when `id` is nil), for a user: lanes are manual from then
    /// on, as with `addLane`. The last lane is never dropped.
    @discardableResult
    public func dropLane(id: Int? = nil) -> Int? {
        let dropped = drainLane(id: id)
        if dropped != nil { lanesSetByUser() }
        return dropped
    }

    private func drainLane(id: Int?) -> Int? {
        let chosen = lock.withLock { () -> (Int, NIOLoopBound<Lane>)? in
            guard let target = lifecycle.dropLane(id), let lane = lanes[target] else { return nil }
            return (target, lane)
        }
        guard let (laneID, lane) = chosen else { return nil }
        lane.eventLoop.execute { lane.value.drain() }
        return laneID
    }

    /// Pauses or resumes issuing requests; requests in flight finish either way.
    public func setPaused(_ paused: Bool) {
        let all = lock.withLock { () -> [NIOLoopBound<Lane>] in
            self.paused = paused
            return Array(lanes.values)
        }
        for lane in all { lane.eventLoop.execute { lane.value.setPaused(paused) } }
        eventContinuation.yield(.paused(paused))
    }

    /// Stops cleanly (Ctrl-C): no new requests, drain, disconnect; `run` throws `.interrupted`.
    /// A person pressing Ctrl-C can wait for deep queues to drain (and press it again).
    public func stop() {
        perform(lock.withLock { lifecycle.stop(.interrupted, drainTimeout: .seconds(60)) })
    }

    // MARK: Performing the lifecycle's actions

    private func perform(_ actions: [CopyLifecycle.Action]) {
        for action in actions {
            switch action {
            case .startLane(let id):
                let (lane, startPaused) = lock.withLock { (lanes[id], paused) }
                guard let lane else { continue }
                eventContinuation.yield(.laneAdded(laneID: id))
                lane.eventLoop.execute { lane.value.start(paused: startPaused) }
            case .discardLane(let id):
                forEachLane([id]) { $0.abort(reason: "the copy ended") }
            case .flush(let id):
                forEachLane([id]) { lane in
                    lane.flushDestination { result in self.finalFlushAnswered(result) }
                }
            case .drain(let ids):
                forEachLane(ids) { $0.drain() }
            case .cancel(let ids):
                forEachLane(ids) { $0.drain(discardingReads: true) }
            case .abort(let ids):
                forEachLane(ids) { $0.abort(reason: "stopped: its requests did not finish in time") }
            case .scheduleDrainTimeout(let timeout):
                group.next().scheduleTask(in: .nanoseconds(Self.nanoseconds(timeout))) {
                    self.perform(self.lock.withLock { self.lifecycle.drainTimedOut() })
                }
            case .closeEndpoints:
                lock.withLock {
                    checkpointTimer?.cancel()
                    tuning.timer?.cancel()
                }
                Task {
                    await source.close()
                    await destination.close()
                    perform(lock.withLock { lifecycle.endpointsClosed() })
                }
            case .complete(let outcome):
                planner.forgetWaiters()
                finished.succeed(outcome)
            }
        }
    }

    /// Runs `body` on each lane's event loop, in order (so later calls see earlier ones).
    private func forEachLane(_ ids: [Int], _ body: @escaping @Sendable (Lane) -> Void) {
        let chosen = lock.withLock { ids.compactMap { lanes[$0] } }
        for lane in chosen {
            lane.eventLoop.execute { body(lane.value) }
        }
    }

    private func finalFlushAnswered(_ result: Result<Void, EndpointError>) {
        switch result {
        case .success:
            // Everything completed before the flush is durable: nothing needs copying again
            // if a connection breaks while the lanes close.
            forEachLane(lock.withLock { lifecycle.laneIDs }) { $0.checkpointReached(.max) }
            perform(lock.withLock { lifecycle.flushSucceeded() })
        case .failure(let error) where error.kind == .connection && settings.checkpoints != nil:
            // The lane reconnects and its unflushed work is copied again before the next try.
            perform(lock.withLock { lifecycle.flushConnectionLost(error.message) })
        case .failure(let error):
            perform(lock.withLock { lifecycle.flushFailed(error.message) })
        }
    }

    private static func nanoseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000
    }

    // MARK: Checkpoints (--reconnect)

    /// With `--reconnect`, flushes the destination every `checkpointBytes` or
    /// `checkpointInterval`, so that what a broken destination connection forces us to copy
    /// again stays bounded.
    private func startCheckpoints() {
        guard let generations = settings.checkpoints else { return }
        let timer = group.next().scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { _ in
            self.checkpointIfDue(generations)
        }
        lock.withLock {
            checkpoint.reset(bytesDone: 0, now: .now)
            checkpointTimer = timer
        }
    }

    private func checkpointIfDue(_ generations: CheckpointGeneration) {
        let bytesDone = planner.currentProgress.bytesDone
        let lane = lock.withLock { () -> NIOLoopBound<Lane>? in
            guard lifecycle.phase == .running,
                  checkpoint.isDue(bytesDone: bytesDone, now: .now, every: options.checkpointBytes, or: options.checkpointInterval),
                  let id = lifecycle.openLaneIDs.first, let lane = lanes[id] else { return nil }
            checkpoint.begin()
            return lane
        }
        guard let lane else { return }
        let generation = generations.advance()
        lane.eventLoop.execute {
            lane.value.flushDestination { result in
                let succeeded = (try? result.get()) != nil
                if succeeded {
                    self.forEachLane(self.lock.withLock { self.lifecycle.laneIDs }) { $0.checkpointReached(generation) }
                }
                self.lock.withLock { self.checkpoint.end(succeeded: succeeded, bytesDone: bytesDone, now: .now) }
            }
        }
    }

    // MARK: Snapshots

    /// Copies every connection's figures off its event loop; cheap enough for 10 Hz.
    public func snapshot() async -> CopySnapshot {
        let (records, ended, isPaused, openLanes) = lock.withLock { (lanes, endedLanes, paused, lifecycle.openLaneCount) }
        let now = NIODeadline.now()
        var byLane = ended
        for (id, lane) in records {
            if let figures = try? await lane.eventLoop.submit({ lane.value.snapshots(now: now) }).get() {
                byLane[id] = figures
            }
        }
        let progress = planner.currentProgress
        let elapsed = ContinuousClock.now - startTime
        let connections = byLane.keys.sorted().flatMap { byLane[$0]! }
        // The copy's rate is what the destination connections acknowledge, so it is exactly
        // the sum of their rates (ranges skipped without a request count in progress only).
        let rate = connections.filter { $0.side == .destination }.reduce(0) { $0 + $1.bytesPerSecond }
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let average = seconds > 0 ? Double(progress.bytesDone) / seconds : 0
        let total = planner.imageSize
        var eta: Duration?
        if let total, rate > 0 {
            eta = .milliseconds(Int64(Double(total - min(total, progress.bytesDone)) / rate * 1000))
        }
        var snapshot = CopySnapshot(
            elapsed: elapsed, bytesTotal: total, bytesDone: progress.bytesDone,
            completedPrefix: planner.completedPrefix, bytesZeroed: progress.bytesZeroed,
            bytesSkipped: progress.bytesSkipped, bytesPerSecond: rate, averageBytesPerSecond: average, eta: eta,
            lanes: openLanes, maximumLanes: maximumLanes,
            laneLimitReason: laneLimitReason, paused: isPaused,
            connections: connections, tuning: lock.withLock { tuning.status })
        snapshot.destinationIsNBD = destination is NBDEndpoint
        judgement.withLockedValue { judgement in
            snapshot.eventLoopCPU = judgement.cpu.busiestShare()
            snapshot.bottleneck = judgement.tracker.observe(snapshot)
        }
        return snapshot
    }
}

extension CopyEngine: LaneDelegate {
    /// A lane's last figures, kept after it ended: its totals stay, but it moves nothing now.
    private static func ended(_ final: [ConnectionSnapshot]) -> [ConnectionSnapshot] {
        final.map { connection in
            var ended = connection
            ended.bytesPerSecond = 0
            return ended
        }
    }

    func laneBecameIdle(_ laneID: Int) {
        perform(lock.withLock { lifecycle.laneIdle(laneID) })
    }

    func laneBecameBusy(_ laneID: Int) {
        lock.withLock { lifecycle.laneBusy(laneID) }
    }

    func laneClosed(_ laneID: Int, final: [ConnectionSnapshot]) {
        let (actions, dropped) = lock.withLock { () -> ([CopyLifecycle.Action], Bool) in
            let dropped = lifecycle.phase == .running && lanes[laneID] != nil
            lanes[laneID] = nil
            endedLanes[laneID] = Self.ended(final)
            return (lifecycle.laneClosed(laneID), dropped)
        }
        if dropped { eventContinuation.yield(.laneDropped(laneID: laneID)) }
        perform(actions)
    }

    func laneFailed(_ laneID: Int, reason: String, final: [ConnectionSnapshot]) {
        let actions = lock.withLock { () -> [CopyLifecycle.Action] in
            lanes[laneID] = nil
            endedLanes[laneID] = Self.ended(final)
            return lifecycle.laneFailed(laneID, reason: reason)
        }
        eventContinuation.yield(.laneFailed(laneID: laneID, reason: reason))
        perform(actions)
    }

    func laneHitFatalError(_ message: String) {
        perform(lock.withLock { lifecycle.stop(.failed(message), drainTimeout: .seconds(5)) })
    }

    func laneReported(_ event: CopyEvent) {
        eventContinuation.yield(event)
    }
}

// MARK: Auto-tuning (-C auto, --request-size auto)

/// The auto-tuner and what the engine keeps for it; protected by the engine's lock.
struct TuningState: Sendable {
    var tuner: AutoTuner
    var timer: RepeatedTask?
    /// The planner's copied bytes and the time at the last tick.
    var lastBytesCopied: UInt64 = 0
    var lastTick: Duration = .zero

    var status: TuningStatus {
        TuningStatus(laneMode: tuner.laneMode, requestSizeIsAuto: tuner.tunesRequestSize, requestSize: tuner.requestSize,
                     lastDecision: tuner.lastDecision?.reason)
    }
}

extension CopyEngine {
    /// How often the tuner gets a measurement.
    static let tuningTick = TimeAmount.milliseconds(100)

    /// Starts the tuner's ticks, when there is something to tune.
    fileprivate func startTuning() {
        let tunes = lock.withLock { tuning.tuner.laneMode == .auto || tuning.tuner.tunesRequestSize }
        guard tunes else { return }
        let timer = group.next().scheduleRepeatedTask(initialDelay: .zero, delay: Self.tuningTick) { _ in
            self.tuningTick()
        }
        lock.withLock { tuning.timer = timer }
    }

    private var elapsed: Duration { ContinuousClock.now - startTime }

    private func tuningTick() {
        let progress = planner.currentProgress
        let handedOut = planner.allHandedOut
        let inFlight = planner.bytesInFlight
        let now = elapsed
        let decisions = lock.withLock { () -> [TuningDecision] in
            // Once every range is handed out, lanes run dry one by one: nothing to learn.
            guard lifecycle.phase == .running, !handedOut else {
                tuning.timer?.cancel()
                tuning.timer = nil
                return []
            }
            let tick = now - tuning.lastTick
            let bytes = progress.bytesCopied - min(progress.bytesCopied, tuning.lastBytesCopied)
            tuning.lastTick = now
            tuning.lastBytesCopied = progress.bytesCopied
            guard tick > .zero else { return [] }
            return tuning.tuner.observe(AutoTuner.Measurement(
                now: now, tick: tick, bytesPerSecond: Double(bytes) / tick.seconds,
                lanes: lifecycle.openLaneCount, bytesInFlight: inFlight, paused: paused))
        }
        carryOut(decisions)
    }

    private func carryOut(_ decisions: [TuningDecision]) {
        for decision in decisions {
            eventContinuation.yield(.auto(decision))
            switch decision.action {
            case .addLane:
                if case .open(let id) = lock.withLock({ lifecycle.reserveLane() }) {
                    Task { _ = try? await self.openLane(id) }
                }
            case .dropLane:
                _ = drainLane(id: nil)
            case .growRequestSize, .shrinkRequestSize:
                planner.setRequestSize(decision.requestSizeAfter)
            case .hold, .manual, .resume:
                break
            }
        }
    }

    fileprivate func lanesSetByUser() {
        let now = elapsed
        carryOut(lock.withLock { tuning.tuner.lanesSetByUser(now: now) })
    }

    /// Tunes lanes again after a user's `+` or `-` made them manual; false when lanes are
    /// not auto-tuned in this copy (`-C N`, or endpoints that allow one connection).
    @discardableResult
    public func resumeAutoLanes() -> Bool {
        let now = elapsed
        let (decisions, tunable) = lock.withLock { () -> ([TuningDecision], Bool) in
            (tuning.tuner.resumeLanes(now: now), tuning.tuner.laneMode != .fixed)
        }
        carryOut(decisions)
        return tunable
    }
}
