import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// Runs a copy from one endpoint to another over lanes that can be added and dropped
/// while it runs, and publishes what it is doing.
///
/// Control is async (start, add, drop, pause, stop, snapshot); the per-request work
/// happens in lanes on their event loops. The engine's own state sits behind one lock
/// that the hot path never takes.
public final class CopyEngine: @unchecked Sendable {
    public let source: any CopyEndpoint
    public let destination: any CopyEndpoint
    public let options: CopyOptions
    /// Events as they happen; finishes when the copy ends.
    public let events: AsyncStream<CopyEvent>

    private let eventContinuation: AsyncStream<CopyEvent>.Continuation
    private let group: any EventLoopGroup
    private let planner: Planner
    private let settings: LaneSettings
    private let lock = NIOLock()
    private let finished: EventLoopPromise<Void>
    private let startTime = ContinuousClock.now

    private enum Phase { case notStarted, running, finishing, stopping, done }
    private struct LaneRecord {
        var lane: NIOLoopBound<Lane>
        var eventLoop: any EventLoop { lane.eventLoop }
        var draining = false
        var idle = false
    }

    private var phase = Phase.notStarted
    private var lanes: [Int: LaneRecord] = [:]
    private var endedLanes: [Int: [ConnectionSnapshot]] = [:]
    private var nextLaneID = 1
    private var paused = false
    private var failure: CopyError?
    private var lastFailureReason = ""
    private var rateSamples: [(time: ContinuousClock.Instant, bytes: UInt64)] = []
    private var flushed = false

    /// The most lanes the endpoints allow, and why.
    public let maximumLanes: Int
    public let laneLimitReason: String

    /// The event loop of the first lane: the one both endpoints were opened on, so that the
    /// first lane reuses the connections that learned the endpoints' facts.
    private let firstEventLoop: (any EventLoop)?

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

        let sourceConstraints = source.constraints, destinationConstraints = destination.constraints
        let alignment = UInt64(max(sourceConstraints.minimum, destinationConstraints.minimum))
        let maximum = UInt64(min(sourceConstraints.maximum, destinationConstraints.maximum))
        var requestSize = min(options.requestSize, maximum)
        requestSize -= requestSize % alignment
        guard requestSize > 0 else {
            throw CopyError.incompatible("request size \(options.requestSize) does not fit the endpoints' block sizes (alignment \(alignment), maximum \(maximum))")
        }
        var granularity = destination.discardsWrites ? 0 : options.sparseGranularity
        if granularity > 0, granularity % UInt64(destinationConstraints.minimum) != 0 {
            granularity += UInt64(destinationConstraints.minimum) - granularity % UInt64(destinationConstraints.minimum)
        }
        let skipZeroes = options.destinationIsZero || destination.startsZeroed
        planner = Planner(Planner.Configuration(
            size: source.size,
            requestSize: requestSize,
            alignment: alignment,
            useExtents: options.useExtents && source.canReportExtents && source.size != nil,
            extentsWindow: max(options.extentsWindow - options.extentsWindow % alignment, alignment),
            maximumZeroLength: destination.canZero ? (1 << 30) : requestSize,
            skipZeroRanges: skipZeroes))
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
            sourceIsStream: source.size == nil)
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
            lock.withLock { phase = .done }
            await closeEndpoints()
            finished.fail(error)
            throw error
        }
        let stoppedEarly = lock.withLock { () -> Bool in
            guard phase == .notStarted else { return true }
            phase = .running
            return false
        }
        if stoppedEarly { throw lock.withLock { failure } ?? CopyError.interrupted }
        let initial = max(1, min(options.connections, maximumLanes))
        do {
            for index in 0..<initial {
                do {
                    _ = try await startLane()
                } catch where index > 0 {
                    continue // The first lane proves the endpoints work; later ones may fail alone.
                }
            }
        } catch {
            await finish(with: .failed("\(error)"))
            throw lock.withLock { failure } ?? CopyError.failed("\(error)")
        }
        lock.withLock {
            if lanes.values.allSatisfy(\.idle) && planner.isFinished && phase == .running {
                beginFinishingLocked()
            }
        }
        try await finished.futureResult.get()
        return CopySummary(snapshot: await snapshot(), flushed: lock.withLock { flushed })
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

    /// Opens a lane and starts it; returns its id or throws `CopyError` saying why not.
    @discardableResult
    public func addLane() async throws -> Int {
        let refusal: String? = lock.withLock {
            guard phase == .running else { return "the copy is finishing" }
            let open = lanes.values.filter { !$0.draining }.count
            guard open < maximumLanes else {
                return maximumLanes == 1 ? "\(laneLimitReason): one connection only" : "already at \(maximumLanes) lanes (\(laneLimitReason))"
            }
            return nil
        }
        if let refusal {
            eventContinuation.yield(.laneRefused(reason: refusal))
            throw CopyError.failed("cannot add a lane: \(refusal)")
        }
        return try await startLane()
    }

    private func startLane() async throws -> Int {
        let id = lock.withLock { () -> Int in
            defer { nextLaneID += 1 }
            return nextLaneID
        }
        let eventLoop = (id == 1 ? firstEventLoop : nil) ?? leastBusyEventLoop()
        let sourceConnection: any EndpointConnection
        let destinationConnection: any EndpointConnection
        do {
            sourceConnection = try await source.connect(on: eventLoop)
            do {
                destinationConnection = try await destination.connect(on: sourceConnection.eventLoop)
            } catch {
                _ = sourceConnection.eventLoop.submit { sourceConnection.abort() }
                throw error
            }
        } catch {
            let reason = "\(error)"
            eventContinuation.yield(.laneFailed(laneID: id, reason: reason))
            throw CopyError.failed(reason)
        }
        let lane = try await sourceConnection.eventLoop.submit { [planner, settings] in
            NIOLoopBound(Lane(id: id, source: sourceConnection, destination: destinationConnection, planner: planner,
                              settings: settings, delegate: self), eventLoop: sourceConnection.eventLoop)
        }.get()
        let (accepted, startPaused) = lock.withLock { () -> (Bool, Bool) in
            guard phase == .running else { return (false, false) }
            lanes[id] = LaneRecord(lane: lane)
            return (true, paused)
        }
        guard accepted else {
            try? await lane.eventLoop.submit { lane.value.abort(reason: "the copy ended") }.get()
            throw CopyError.failed("the copy ended")
        }
        eventContinuation.yield(.laneAdded(laneID: id))
        lane.eventLoop.execute { lane.value.start(paused: startPaused) }
        return id
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

    /// Drains a lane (the newest when `id` is nil); the last lane is never dropped.
    @discardableResult
    public func dropLane(id: Int? = nil) -> Int? {
        let chosen = lock.withLock { () -> (Int, NIOLoopBound<Lane>)? in
            let open = lanes.filter { !$0.value.draining }
            guard phase == .running, open.count > 1 else { return nil }
            let target = id ?? open.keys.max()!
            guard var record = open[target] else { return nil }
            record.draining = true
            lanes[target] = record
            return (target, record.lane)
        }
        guard let (laneID, lane) = chosen else { return nil }
        lane.eventLoop.execute { lane.value.drain() }
        return laneID
    }

    /// Pauses or resumes issuing requests; requests in flight finish either way.
    public func setPaused(_ paused: Bool) {
        let all = lock.withLock { () -> [NIOLoopBound<Lane>] in
            self.paused = paused
            return lanes.values.map(\.lane)
        }
        for lane in all { lane.eventLoop.execute { lane.value.setPaused(paused) } }
        eventContinuation.yield(.paused(paused))
    }

    /// Stops cleanly (Ctrl-C): no new requests, drain, disconnect; `run` throws `.interrupted`.
    public func stop() {
        Task { await finish(with: .interrupted) }
    }

    // MARK: Snapshots

    /// Copies every connection's figures off its event loop; cheap enough for 10 Hz.
    public func snapshot() async -> CopySnapshot {
        let (records, ended, isPaused) = lock.withLock { (lanes, endedLanes, paused) }
        let now = NIODeadline.now()
        var byLane = ended
        for (id, record) in records {
            let lane = record.lane
            if let figures = try? await lane.eventLoop.submit({ lane.value.snapshots(now: now) }).get() {
                byLane[id] = figures
            }
        }
        let progress = planner.currentProgress
        let elapsed = ContinuousClock.now - startTime
        let rate = lock.withLock { recentRate(bytesDone: progress.bytesDone) }
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let average = seconds > 0 ? Double(progress.bytesDone) / seconds : 0
        let total = planner.imageSize
        var eta: Duration?
        if let total, rate > 0 {
            eta = .milliseconds(Int64(Double(total - min(total, progress.bytesDone)) / rate * 1000))
        }
        return CopySnapshot(
            elapsed: elapsed, bytesTotal: total, bytesDone: progress.bytesDone,
            completedPrefix: planner.completedPrefix, bytesZeroed: progress.bytesZeroed,
            bytesSkipped: progress.bytesSkipped, bytesPerSecond: rate, averageBytesPerSecond: average, eta: eta,
            lanes: records.values.filter { !$0.draining }.count, maximumLanes: maximumLanes,
            laneLimitReason: laneLimitReason, paused: isPaused,
            connections: byLane.keys.sorted().flatMap { byLane[$0]! })
    }

    /// Bytes per second over about the last second, from the samples of earlier snapshots.
    private func recentRate(bytesDone: UInt64) -> Double {
        let now = ContinuousClock.now
        rateSamples.append((now, bytesDone))
        rateSamples.removeAll { now - $0.time > .seconds(3) }
        // Before a second has passed, the rate since the start is the best there is.
        let reference = rateSamples.last { now - $0.time >= .seconds(1) } ?? (startTime, 0)
        let span = now - reference.time
        let seconds = Double(span.components.seconds) + Double(span.components.attoseconds) / 1e18
        guard seconds > 0.05 else { return 0 }
        return Double(bytesDone - min(bytesDone, reference.bytes)) / seconds
    }

    // MARK: Ending

    /// All work is done: flush once on one destination connection, then close every lane.
    private func beginFinishingLocked() {
        phase = .finishing
        let open = lanes.values.map(\.lane)
        Task {
            do {
                if options.flush, let lane = open.first {
                    let connection = try await lane.eventLoop.submit { lane.value.destination as any EndpointConnection }.get()
                    try await destination.flush(on: UnsafeTransfer(connection).value)
                    lock.withLock { flushed = true }
                }
                await closeLanes(open)
                await closeEndpoints()
                lock.withLock { phase = .done }
                finished.succeed()
            } catch {
                await closeLanes(open)
                await finish(with: .failed("flush failed: \(error)"))
            }
        }
    }

    private func closeLanes(_ open: [NIOLoopBound<Lane>]) async {
        for lane in open { lane.eventLoop.execute { lane.value.drain() } }
        await waitUntil { self.lanes.isEmpty }
    }

    private func closeEndpoints() async {
        await source.close()
        await destination.close()
    }

    /// How long lanes may take to finish their requests when the copy stops: a person
    /// pressing Ctrl-C can wait (and press it again); a failed copy should end soon.
    private static func drainTimeout(for error: CopyError) -> Duration {
        error == .interrupted ? .seconds(60) : .seconds(5)
    }

    /// Ends the copy with `error`: lanes drain (aborted after a timeout), endpoints close.
    private func finish(with error: CopyError) async {
        let open = lock.withLock { () -> [NIOLoopBound<Lane>]? in
            guard phase != .stopping && phase != .done else { return nil }
            phase = .stopping
            failure = error
            return lanes.values.map(\.lane)
        }
        guard let open else { return }
        for lane in open { lane.eventLoop.execute { lane.value.drain() } }
        if !(await waitUntil(timeout: Self.drainTimeout(for: error), { self.lanes.isEmpty })) {
            for lane in open { lane.eventLoop.execute { lane.value.abort(reason: "stopped") } }
        }
        await closeEndpoints()
        lock.withLock { phase = .done }
        finished.fail(error)
    }

    /// Polls `condition` under the lock until it holds; false after `timeout`.
    @discardableResult
    private func waitUntil(timeout: Duration = .seconds(3600), _ condition: @escaping () -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while !lock.withLock(condition) {
            if ContinuousClock.now > deadline { return false }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return true
    }
}

extension CopyEngine: LaneDelegate {
    func laneBecameIdle(_ laneID: Int) {
        lock.withLock {
            lanes[laneID]?.idle = true
            if phase == .running, planner.isFinished, lanes.values.allSatisfy({ $0.idle || $0.draining }) {
                beginFinishingLocked()
            }
        }
    }

    func laneClosed(_ laneID: Int, final: [ConnectionSnapshot]) {
        let dropped = lock.withLock { () -> Bool in
            let wasDropped = phase == .running
            lanes[laneID] = nil
            endedLanes[laneID] = final
            if phase == .running, planner.isFinished, !lanes.isEmpty, lanes.values.allSatisfy({ $0.idle || $0.draining }) {
                beginFinishingLocked()
            }
            return wasDropped
        }
        if dropped { eventContinuation.yield(.laneDropped(laneID: laneID)) }
    }

    func laneFailed(_ laneID: Int, reason: String, final: [ConnectionSnapshot]) {
        let noneLeft = lock.withLock { () -> Bool in
            lanes[laneID] = nil
            endedLanes[laneID] = final
            lastFailureReason = reason
            return (phase == .running || phase == .finishing) && lanes.isEmpty
        }
        eventContinuation.yield(.laneFailed(laneID: laneID, reason: reason))
        if noneLeft {
            Task { await finish(with: .noLanesLeft(reason)) }
        }
    }

    func laneHitFatalError(_ message: String) {
        Task { await finish(with: .failed(message)) }
    }

    func laneReported(_ event: CopyEvent) {
        eventContinuation.yield(event)
    }
}

/// Carries a value across a concurrency boundary that the caller knows is safe.
struct UnsafeTransfer<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
