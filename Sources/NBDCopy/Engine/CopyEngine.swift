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

    let eventContinuation: AsyncStream<CopyEvent>.Continuation
    let group: any EventLoopGroup
    let planner: Planner
    let settings: LaneSettings
    let finished: EventLoopPromise<CopyOutcome>
    let startTime = ContinuousClock.now
    /// The event loop of the first lane: the one both endpoints were opened on, so that the
    /// first lane reuses the connections that learned the endpoints' facts.
    let firstEventLoop: (any EventLoop)?

    /// The bottleneck rules' history and the CPU readings; its own lock, so that reading
    /// procfs never holds the engine's.
    let judgement: NIOLockedValueBox<(tracker: BottleneckTracker, cpu: EventLoopCPU)>

    let lock = NIOLock()
    // Protected by `lock`:
    var lifecycle: CopyLifecycle
    var lanes: [Int: NIOLoopBound<Lane>] = [:]
    /// The event loops of lanes still opening, by lane id: lanes opened at once spread
    /// over the loops too.
    var openingLoops: [Int: any EventLoop] = [:]
    var endedLanes: [Int: [ConnectionSnapshot]] = [:]
    var paused = false
    var checkpoint = CheckpointSchedule()
    var checkpointTimer: RepeatedTask?
    var tuning: TuningState

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
            requestSizes: requestSizes, ordinaryLargestSize: ordinaryLargestSize, largestFittedSize: largestFittedSize,
            sharedCores: source.runsOnThisMachine && destination.runsOnThisMachine ? options.cores : nil)))
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
            requests: RequestLimit(maximum: max(1, options.requestsPerLane),
                                   starting: tuning.tuner.tunesRequestSize ? Self.requestsDuringFirstLook : .max),
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

    static func laneLimit(source: any CopyEndpoint, destination: any CopyEndpoint) -> (Int, String) {
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
            await openInitialLanes(lock.withLock { tuning.tuner.lanes })
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
}
