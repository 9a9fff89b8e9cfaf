import NIOCore

/// Live figures of one connection, updated by its lane on the lane's event loop.
///
/// Confined to one event loop, so the hot path takes no locks; the engine copies a
/// `ConnectionSnapshot` out by hopping onto that loop.
///
/// Time only comes in as the `now` of each call (monotonic uptime), never from the clock.
/// Each request costs amortized O(1); reading percentiles for a snapshot or the adaptive
/// stall threshold walks the latency histogram once.
public final class ConnectionStats {
    /// Identifies one request from `requestSent` to `requestCompleted`.
    public typealias RequestToken = UInt64

    /// Happened while evaluating the stall state: a new episode began.
    public struct StallStarted: Sendable, Equatable {
        public var oldestAge: Duration
        public var heldBehind: Int

        public init(oldestAge: Duration, heldBehind: Int) {
            self.oldestAge = oldestAge
            self.heldBehind = heldBehind
        }
    }

    public let laneID: Int
    public let side: ConnectionSide
    public var state: ConnectionState = .connecting
    public var failureReason: String?
    /// While `state` is `.reconnecting`: the try under way, counted from 1.
    public var reconnectAttempt = 0
    /// Times the connection was opened again after it broke.
    public var reconnects = 0

    /// When the connection's figures started, in nanoseconds of uptime; other times are relative to it.
    private let openedAtUptimeNanoseconds: UInt64
    private var nextToken: RequestToken = 1
    private var inFlight = InFlightRequests()
    private var queued = 0
    private var completedBytes: UInt64 = 0
    private var trailingRate = TrailingRate()
    private var rateHistory = RateHistory()
    private var latency = LatencyWindow()
    private var threshold: StallThreshold
    private var stalls = StallEpisodes()
    private var errors = 0
    private var retries = 0

    /// `stallThreshold` nil means adaptive: 8 × recent median latency, never below 50 ms.
    public init(laneID: Int, side: ConnectionSide, stallThreshold: Duration?, now: NIODeadline) {
        self.laneID = laneID
        self.side = side
        self.openedAtUptimeNanoseconds = now.uptimeNanoseconds
        self.threshold = StallThreshold(explicit: stallThreshold)
    }

    /// A request of `bytes` was sent at `now`.
    public func requestSent(bytes: UInt64, now: NIODeadline) -> RequestToken {
        let token = nextToken
        nextToken &+= 1
        let elapsed = elapsedNanoseconds(at: now)
        inFlight.insert(token: token, sentAtNanoseconds: elapsed, bytes: bytes)
        updateRunningStall(elapsedNanoseconds: elapsed)
        return token
    }

    /// The request answered at `now`; `bytes` counts toward the rate only when it succeeded.
    ///
    /// Only successful round trips count toward latency. An unknown or already answered
    /// token is ignored.
    public func requestCompleted(_ token: RequestToken, succeeded: Bool, now: NIODeadline) {
        guard let request = inFlight.remove(token: token) else { return }
        let elapsed = elapsedNanoseconds(at: now)
        if succeeded {
            completedBytes &+= request.bytes
            trailingRate.record(bytes: request.bytes, elapsedNanoseconds: elapsed)
            rateHistory.record(bytes: request.bytes, elapsedNanoseconds: elapsed)
            let roundTrip = elapsed >= request.sentAtNanoseconds ? elapsed - request.sentAtNanoseconds : 0
            latency.record(latencyNanoseconds: roundTrip, elapsedNanoseconds: elapsed)
        } else {
            errors += 1
        }
        updateRunningStall(elapsedNanoseconds: elapsed)
    }

    /// Requests waiting in the lane for this connection, not yet sent.
    ///
    /// Ends a running stall episode when nothing waits any more, but there is no `now`
    /// here, so the episode is timed up to the latest request sent or completed.
    public func setQueued(_ count: Int) {
        queued = max(0, count)
        if stalls.isStalled { updateRunningStall(elapsedNanoseconds: latestElapsedNanoseconds) }
    }

    /// Counts a retry of a request that failed on this connection.
    public func recordRetry() {
        retries += 1
    }

    /// Re-evaluates the stall state; returns a value when a new episode starts.
    public func evaluateStall(now: NIODeadline) -> StallStarted? {
        let elapsed = elapsedNanoseconds(at: now)
        let condition = stallCondition(elapsedNanoseconds: elapsed)
        let started = stalls.update(
            conditionHolds: condition.holds, heldBehind: condition.heldBehind,
            elapsedNanoseconds: elapsed, mayStart: true)
        guard started else { return nil }
        return StallStarted(oldestAge: .nanoseconds(Int64(clamping: condition.oldestAgeNanoseconds)),
                            heldBehind: condition.heldBehind)
    }

    /// The figures as of `now`.
    public func snapshot(now: NIODeadline) -> ConnectionSnapshot {
        let elapsed = elapsedNanoseconds(at: now)
        latency.advance(elapsedNanoseconds: elapsed)
        threshold.refresh(from: latency, elapsedNanoseconds: elapsed, force: true)

        var snapshot = ConnectionSnapshot(laneID: laneID, side: side, state: state)
        snapshot.failureReason = failureReason
        snapshot.reconnectAttempt = reconnectAttempt
        snapshot.reconnects = reconnects
        snapshot.bytes = completedBytes
        snapshot.bytesPerSecond = trailingRate.bytesPerSecond(elapsedNanoseconds: elapsed)
        snapshot.rateHistory = rateHistory.bytesPerSecond(elapsedNanoseconds: elapsed)
        snapshot.inFlight = inFlight.count
        snapshot.inFlightBytes = inFlight.bytes
        snapshot.queued = queued
        snapshot.latencyP50 = latency.latency(atPercentile: 50)
        snapshot.latencyP99 = latency.latency(atPercentile: 99)
        snapshot.oldestInFlight = inFlight.oldestSentAtNanoseconds.map {
            .nanoseconds(Int64(clamping: elapsed >= $0 ? elapsed - $0 : 0))
        }
        snapshot.stallThreshold = threshold.nanoseconds == .max ? nil : .nanoseconds(Int64(clamping: threshold.nanoseconds))
        snapshot.stalled = stalls.isStalled
        snapshot.stallEpisodes = stalls.count
        snapshot.stalledTime = .nanoseconds(Int64(clamping: stalls.stalledNanoseconds(atElapsedNanoseconds: elapsed)))
        snapshot.requestsHeldBehind = stalls.heldBehind
        snapshot.errors = errors
        snapshot.retries = retries
        return snapshot
    }

    // MARK: Stall condition

    /// The latest time seen by `requestSent`, `requestCompleted` or `evaluateStall`.
    private var latestElapsedNanoseconds: UInt64 = 0

    /// Nanoseconds since the connection's figures started, never negative; remembers the latest.
    private func elapsedNanoseconds(at now: NIODeadline) -> UInt64 {
        let uptime = now.uptimeNanoseconds
        let elapsed = uptime >= openedAtUptimeNanoseconds ? uptime - openedAtUptimeNanoseconds : 0
        latestElapsedNanoseconds = max(latestElapsedNanoseconds, elapsed)
        return elapsed
    }

    /// Whether the oldest request in flight has waited past the threshold with others behind it.
    private func stallCondition(
        elapsedNanoseconds elapsed: UInt64
    ) -> (holds: Bool, oldestAgeNanoseconds: UInt64, heldBehind: Int) {
        guard let oldestSentAt = inFlight.oldestSentAtNanoseconds else { return (false, 0, 0) }
        let oldestAge = elapsed >= oldestSentAt ? elapsed - oldestSentAt : 0
        let heldBehind = inFlight.count - 1 + queued
        // Cheap exits first: the threshold is never below its floor, and reading the
        // adaptive one may walk the latency histogram.
        guard heldBehind > 0, oldestAge > threshold.lowestPossibleNanoseconds else {
            return (false, oldestAge, heldBehind)
        }
        latency.advance(elapsedNanoseconds: elapsed)
        threshold.refresh(from: latency, elapsedNanoseconds: elapsed, force: false)
        return (oldestAge > threshold.nanoseconds, oldestAge, heldBehind)
    }

    /// Ends or extends a running episode; new episodes start only in `evaluateStall`.
    private func updateRunningStall(elapsedNanoseconds elapsed: UInt64) {
        guard stalls.isStalled else { return }
        let condition = stallCondition(elapsedNanoseconds: elapsed)
        _ = stalls.update(
            conditionHolds: condition.holds, heldBehind: condition.heldBehind,
            elapsedNanoseconds: elapsed, mayStart: false)
    }
}
