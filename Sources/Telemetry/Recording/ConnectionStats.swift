import NBD
import NIOCore

/// Live figures of one connection, updated by its lane on the lane's event loop.
///
/// Confined to one event loop, so the hot path takes no locks; the engine copies a
/// `ConnectionSnapshot` out by hopping onto that loop.
///
/// Time only comes in as the `now` of each call (monotonic uptime), never from the clock.
/// Each request costs amortized O(1); reading percentiles for a snapshot or an adaptive
/// threshold walks a histogram once. Stalls and slow requests are `StallDetector`'s.
public final class ConnectionStats {
    /// Identifies one request from `requestSent` to `requestCompleted`.
    public typealias RequestToken = UInt64

    /// Happened while evaluating the stall state: a new episode began.
    public struct StallStarted: Sendable, Equatable {
        public var oldestAge: Duration
        public var held: Int

        public init(oldestAge: Duration, held: Int) {
            self.oldestAge = oldestAge
            self.held = held
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
    private var completedBytes: UInt64 = 0
    private var trailingRate = TrailingRate()
    private var rateHistory = RateHistory()
    private var latency = LatencyWindow()
    private var stalls: StallDetector
    private var errors = 0
    private var retries = 0
    private var tally = RequestTally()

    /// nil thresholds are adaptive (see `StallDetector`).
    public init(laneID: Int, side: ConnectionSide, stallThreshold: Duration?, slowThreshold: Duration? = nil, now: NIODeadline) {
        self.laneID = laneID
        self.side = side
        self.openedAtUptimeNanoseconds = now.uptimeNanoseconds
        self.stalls = StallDetector(stallThreshold: stallThreshold, slowThreshold: slowThreshold)
    }

    /// A request of `bytes` was sent at `now`.
    public func requestSent(bytes: UInt64, now: NIODeadline) -> RequestToken {
        let token = nextToken
        nextToken &+= 1
        let elapsed = elapsedNanoseconds(at: now)
        stalls.requestSent(at: elapsed, inFlightBefore: inFlight.count)
        inFlight.insert(token: token, sentAtNanoseconds: elapsed, bytes: bytes,
                        stalledAtSendNanoseconds: stalls.stalledNanoseconds(at: elapsed))
        return token
    }

    /// The request answered at `now`; `bytes` counts toward the rate only when it succeeded.
    /// Returns its round trip when it was a slow request (see `StallDetector`).
    ///
    /// Only successful round trips count toward latency. An unknown or already answered
    /// token is ignored. `operation` and `errno` go into the totals (`RequestTally`) when given.
    @discardableResult
    public func requestCompleted(_ token: RequestToken, succeeded: Bool, now: NIODeadline,
                                 operation: RequestOperation? = nil, errno: NBDErrno? = nil) -> Duration? {
        guard let request = inFlight.remove(token: token) else { return nil }
        let elapsed = elapsedNanoseconds(at: now)
        let roundTrip = elapsed >= request.sentAtNanoseconds ? elapsed - request.sentAtNanoseconds : 0
        if let operation {
            tally.record(operation, roundTripNanoseconds: roundTrip, succeeded: succeeded, errno: errno)
        }
        if succeeded {
            completedBytes &+= request.bytes
            trailingRate.record(bytes: request.bytes, elapsedNanoseconds: elapsed)
            rateHistory.record(bytes: request.bytes, elapsedNanoseconds: elapsed)
            latency.record(latencyNanoseconds: roundTrip, elapsedNanoseconds: elapsed)
        } else {
            errors += 1
        }
        let slow = stalls.requestAnswered(at: elapsed, bytes: request.bytes, sentAt: request.sentAtNanoseconds,
                                          stalledAtSend: request.stalledAtSendNanoseconds, succeeded: succeeded,
                                          latency: latency, overtaking: { inFlight.overtaking(request, token: token) })
        return slow ? .nanoseconds(Int64(clamping: roundTrip)) : nil
    }

    /// Counts a retry of a request that failed on this connection.
    public func recordRetry() {
        retries += 1
    }

    /// Re-evaluates the stall state; returns a value when a new episode starts.
    public func evaluateStall(now: NIODeadline) -> StallStarted? {
        let elapsed = elapsedNanoseconds(at: now)
        guard let started = stalls.evaluate(at: elapsed, inFlight: inFlight.count, oldestSentAt: inFlight.oldestSentAtNanoseconds,
                                            oldestBytes: inFlight.oldestBytes) else {
            return nil
        }
        return StallStarted(oldestAge: .nanoseconds(Int64(clamping: started.oldestAgeNanoseconds)), held: started.held)
    }

    /// The figures as of `now`.
    public func snapshot(now: NIODeadline) -> ConnectionSnapshot {
        let elapsed = elapsedNanoseconds(at: now)
        latency.advance(elapsedNanoseconds: elapsed)
        stalls.refresh(at: elapsed, force: true, latency: latency)

        var snapshot = ConnectionSnapshot(laneID: laneID, side: side, state: state)
        snapshot.failureReason = failureReason
        snapshot.reconnectAttempt = reconnectAttempt
        snapshot.reconnects = reconnects
        snapshot.bytes = completedBytes
        snapshot.bytesPerSecond = trailingRate.bytesPerSecond(elapsedNanoseconds: elapsed)
        snapshot.rateHistory = rateHistory.bytesPerSecond(elapsedNanoseconds: elapsed)
        snapshot.inFlight = inFlight.count
        snapshot.inFlightBytes = inFlight.bytes
        snapshot.latencyP50 = latency.latency(atPercentile: 50)
        snapshot.latencyP99 = latency.latency(atPercentile: 99)
        snapshot.oldestInFlight = inFlight.oldestSentAtNanoseconds.map {
            .nanoseconds(Int64(clamping: elapsed >= $0 ? elapsed - $0 : 0))
        }
        snapshot.stallThreshold = stalls.stallThresholdInForce
        snapshot.slowThreshold = stalls.slowThreshold.duration
        snapshot.stalled = stalls.isStalled
        snapshot.stallEpisodes = stalls.episodes
        snapshot.stalledTime = .nanoseconds(Int64(clamping: stalls.stalledNanoseconds(at: elapsed)))
        snapshot.held = stalls.held
        snapshot.requestsHeldBehind = stalls.totalHeld
        snapshot.slowRequests = stalls.slowRequests
        snapshot.errors = errors
        snapshot.retries = retries
        snapshot.tally = tally
        return snapshot
    }

    /// Nanoseconds since the connection's figures started, never negative.
    private func elapsedNanoseconds(at now: NIODeadline) -> UInt64 {
        let uptime = now.uptimeNanoseconds
        return uptime >= openedAtUptimeNanoseconds ? uptime - openedAtUptimeNanoseconds : 0
    }
}
