import NIOCore
import Testing

@testable import Telemetry

/// The stall and slow-request definitions on synthetic timelines, through `ConnectionStats`
/// (every time a chosen `NIODeadline`): the server shapes of docs/telemetry.md, each
/// reduced to its timing.
@Suite struct StallDetectorTests {
    static func at(_ milliseconds: Double) -> NIODeadline { ConnectionStatsTests.at(milliseconds) }

    /// Evaluates every 20 ms from `from` to `to`, as the lane does; the episodes that start.
    static func tick(_ stats: ConnectionStats, from: Double, to: Double) -> [ConnectionStats.StallStarted] {
        stride(from: from, through: to, by: 20).compactMap { stats.evaluateStall(now: at($0)) }
    }

    /// A server that answers in order, one request at a time, `service` ms each, with
    /// `depth` requests kept in flight; request `slowIndex` takes `slow` ms. Returns the
    /// stats and the slow-request round trips reported.
    static func serialized(depth: Int, requests: Int, service: Double, slowIndex: Int, slow: Double,
                           threshold: Duration? = nil) -> (ConnectionStats, [Duration]) {
        let stats = ConnectionStats(laneID: 1, side: .source, stallThreshold: threshold, now: at(0))
        var pending: [(token: ConnectionStats.RequestToken, sentAt: Double)] = []
        var now = 0.0, sent = 0, slowReported: [Duration] = []
        while sent < depth {
            pending.append((stats.requestSent(bytes: 4096, now: at(now)), now))
            sent += 1
        }
        for index in 0..<requests {
            let finishAt = now + (index == slowIndex ? slow : service)
            _ = tick(stats, from: now, to: finishAt - 1)
            now = finishAt
            let done = pending.removeFirst()
            if let latency = stats.requestCompleted(done.token, succeeded: true, now: at(now)) { slowReported.append(latency) }
            if sent < requests {
                pending.append((stats.requestSent(bytes: 4096, now: at(now)), now))
                sent += 1
            }
        }
        return (stats, slowReported)
    }

    @Test func oneSlowRequestOnASerializedServerIsAStallNotASlowRequest() {
        let (stats, slow) = Self.serialized(depth: 4, requests: 200, service: 10, slowIndex: 100, slow: 1500)
        let snapshot = stats.snapshot(now: Self.at(10_000))
        #expect(snapshot.stallEpisodes == 1)
        // Timed from the last completion before it: the whole 1.5 s the connection was blocked.
        #expect(snapshot.stalledTime >= .milliseconds(1400) && snapshot.stalledTime <= .milliseconds(1500), "\(snapshot.stalledTime)")
        #expect(snapshot.requestsHeldBehind == 3)
        #expect(slow.isEmpty, "requests that waited out a stall are held, not slow: \(slow)")
        #expect(!snapshot.stalled)
    }

    @Test func oneSlowRequestWhileOthersKeepCompletingIsASlowRequestNotAStall() {
        let stats = ConnectionStats(laneID: 1, side: .source, stallThreshold: nil, now: Self.at(0))
        // 8 in flight; replies every 10 ms out of order; one request sent at 500 ms takes 1.5 s.
        var slowReported: [Duration] = []
        var now = 0.0
        var inFlight: [ConnectionStats.RequestToken] = (0..<7).map { _ in stats.requestSent(bytes: 4096, now: Self.at(0)) }
        var slowToken: ConnectionStats.RequestToken?
        while now < 3000 {
            now += 10
            _ = stats.evaluateStall(now: Self.at(now))
            if now == 500 { slowToken = stats.requestSent(bytes: 4096, now: Self.at(now)) }
            if now == 2000, let token = slowToken {
                if let latency = stats.requestCompleted(token, succeeded: true, now: Self.at(now)) { slowReported.append(latency) }
            }
            let done = inFlight.removeFirst()
            if let latency = stats.requestCompleted(done, succeeded: true, now: Self.at(now)) { slowReported.append(latency) }
            inFlight.append(stats.requestSent(bytes: 4096, now: Self.at(now)))
        }
        let snapshot = stats.snapshot(now: Self.at(now))
        #expect(snapshot.stallEpisodes == 0)
        #expect(slowReported == [.milliseconds(1500)])
        #expect(snapshot.slowRequests == 1)
    }

    @Test func aBandwidthCapWithDeepQueuesIsNeither() {
        // 64 in flight, one completion every 25 ms (10 MB/s of 256 KiB requests): every round
        // trip is 1.6 s, uniformly, and the connection never stops moving.
        let stats = ConnectionStats(laneID: 1, side: .source, stallThreshold: nil, now: Self.at(0))
        var inFlight = (0..<64).map { _ in stats.requestSent(bytes: 262_144, now: Self.at(0)) }
        var slow = 0, started: [ConnectionStats.StallStarted] = []
        var now = 0.0
        while now < 5000 {
            now += 25
            started += Self.tick(stats, from: now - 20, to: now - 1)
            if stats.requestCompleted(inFlight.removeFirst(), succeeded: true, now: Self.at(now)) != nil { slow += 1 }
            inFlight.append(stats.requestSent(bytes: 262_144, now: Self.at(now)))
        }
        #expect(started.isEmpty)
        #expect(slow == 0)
        let snapshot = stats.snapshot(now: Self.at(now))
        #expect(snapshot.stallEpisodes == 0 && snapshot.slowRequests == 0)
        #expect(snapshot.held == 0)
    }

    @Test func aServerThatStopsAnsweringStallsUntilItResumes() {
        let stats = ConnectionStats(laneID: 1, side: .source, stallThreshold: nil, now: Self.at(0))
        var inFlight = (0..<4).map { _ in stats.requestSent(bytes: 4096, now: Self.at(0)) }
        var now = 0.0
        func answerOne() {
            stats.requestCompleted(inFlight.removeFirst(), succeeded: true, now: Self.at(now))
            inFlight.append(stats.requestSent(bytes: 4096, now: Self.at(now)))
        }
        while now < 1000 { now += 5; _ = stats.evaluateStall(now: Self.at(now)); answerOne() }
        let started = Self.tick(stats, from: now, to: now + 2000)  // stopped for 2 s
        #expect(started.count == 1)
        #expect(started.first?.held == 3)
        #expect(stats.snapshot(now: Self.at(now + 1000)).stalled)
        #expect(stats.snapshot(now: Self.at(now + 1000)).held == 3)
        now += 2000
        answerOne()
        let snapshot = stats.snapshot(now: Self.at(now))
        #expect(!snapshot.stalled)
        #expect(snapshot.held == 0)
        #expect(snapshot.stallEpisodes == 1)
        #expect(snapshot.stalledTime == .milliseconds(2000))
    }

    @Test func aPipelineThatIsOnlyFillingIsNoStallBeforeAnyReply() {
        let stats = ConnectionStats(laneID: 1, side: .source, stallThreshold: nil, now: Self.at(0))
        for _ in 0..<64 { _ = stats.requestSent(bytes: 4096, now: Self.at(0)) }
        #expect(Self.tick(stats, from: 0, to: 3000).isEmpty)
        #expect(stats.snapshot(now: Self.at(3000)).stallThreshold == nil)
    }

    @Test func anIdleConnectionIsNotStalledAndItsQuietTimeStartsWithTheNextRequest() {
        let stats = ConnectionStats(laneID: 1, side: .source, stallThreshold: .milliseconds(200), now: Self.at(0))
        ConnectionStatsTests.roundTrip(stats, sentAt: 0, completedAt: 10)
        #expect(Self.tick(stats, from: 20, to: 5000).isEmpty)  // nothing in flight: idle, not blocked
        _ = stats.requestSent(bytes: 4096, now: Self.at(5000))
        #expect(Self.tick(stats, from: 5000, to: 5180).isEmpty)
        #expect(Self.tick(stats, from: 5200, to: 5220).count == 1)
    }

    @Test func theAdaptiveThresholdIsEightTimesTheMedianGapWithAFloor() {
        let stats = ConnectionStats(laneID: 1, side: .source, stallThreshold: nil, now: Self.at(0))
        var now = 0.0
        var token = stats.requestSent(bytes: 4096, now: Self.at(0))
        for _ in 0..<50 {
            now += 40
            stats.requestCompleted(token, succeeded: true, now: Self.at(now))
            token = stats.requestSent(bytes: 4096, now: Self.at(now))
        }
        #expect(ConnectionStatsTests.isClose(stats.snapshot(now: Self.at(now)).stallThreshold, toMilliseconds: 320))
        let fast = ConnectionStats(laneID: 1, side: .source, stallThreshold: nil, now: Self.at(0))
        for answer in 1...StallDetector.minimumAnswers {
            // Not known until the connection has given its first few answers.
            #expect(fast.snapshot(now: Self.at(Double(answer))).stallThreshold == nil)
            ConnectionStatsTests.roundTrip(fast, sentAt: Double(answer), completedAt: Double(answer) + 1)
        }
        #expect(fast.snapshot(now: Self.at(20)).stallThreshold == .milliseconds(100))
    }

    @Test func explicitThresholdsReplaceTheAdaptiveOnes() {
        let stats = ConnectionStats(laneID: 1, side: .source, stallThreshold: .milliseconds(30),
                                    slowThreshold: .milliseconds(40), now: Self.at(0))
        let snapshot = stats.snapshot(now: Self.at(0))
        #expect(snapshot.stallThreshold == .milliseconds(30))
        #expect(snapshot.slowThreshold == .milliseconds(40))
        let token = stats.requestSent(bytes: 4096, now: Self.at(0))
        _ = stats.requestSent(bytes: 4096, now: Self.at(0))
        #expect(Self.tick(stats, from: 0, to: 40).count == 1)
        // A request answered after a stall is not slow, whatever its round trip.
        #expect(stats.requestCompleted(token, succeeded: true, now: Self.at(45)) == nil)
    }

    @Test func failuresEndAStallLikeAnyAnswer() {
        let stats = ConnectionStats(laneID: 1, side: .source, stallThreshold: .milliseconds(100), now: Self.at(0))
        let first = stats.requestSent(bytes: 4096, now: Self.at(0))
        _ = stats.requestSent(bytes: 4096, now: Self.at(0))
        #expect(Self.tick(stats, from: 0, to: 120).count == 1)
        stats.requestCompleted(first, succeeded: false, now: Self.at(130))
        let snapshot = stats.snapshot(now: Self.at(130))
        #expect(!snapshot.stalled)
        #expect(snapshot.stalledTime == .milliseconds(130))
        #expect(snapshot.errors == 1)
    }

    /// An in-order server capped at `bytesPerMillisecond`, `depth` requests in flight, whose
    /// request `index` is `size(index)` bytes; request `stuckIndex` also waits `stuck` ms.
    static func byteCapped(depth: Int, requests: Int, bytesPerMillisecond: Double, size: (Int) -> UInt64,
                           stuckIndex: Int = -1, stuck: Double = 0) -> ConnectionStats {
        let stats = ConnectionStats(laneID: 1, side: .source, stallThreshold: nil, now: at(0))
        var pending: [(token: ConnectionStats.RequestToken, bytes: UInt64)] = []
        var now = 0.0, sent = 0, answered = 0
        func send() {
            pending.append((stats.requestSent(bytes: size(sent), now: at(now)), size(sent)))
            sent += 1
        }
        while sent < depth { send() }
        while answered < requests {
            let oldest = pending.removeFirst()
            let finishAt = now + Double(oldest.bytes) / bytesPerMillisecond + (answered == stuckIndex ? stuck : 0)
            _ = tick(stats, from: now, to: finishAt - 1)
            now = finishAt
            stats.requestCompleted(oldest.token, succeeded: true, now: at(now))
            answered += 1
            if sent < requests { send() }
        }
        return stats
    }

    @Test func aLargeRequestUnderABandwidthCapIsNoStall() {
        // 10 MB/s; 64 KiB requests (6.5 ms each), every 50th one 4 MiB (419 ms): the gaps say
        // 100 ms, but the bytes of the large one need that long at the connection's pace.
        let sizes: (Int) -> UInt64 = { $0 % 50 == 49 ? 4 << 20 : 64 << 10 }
        let capped = Self.byteCapped(depth: 4, requests: 400, bytesPerMillisecond: 10_000, size: sizes)
        #expect(capped.snapshot(now: Self.at(60_000)).stallEpisodes == 0)
        // The same server with one small request stuck for 1.5 s: still a stall.
        let stuck = Self.byteCapped(depth: 4, requests: 400, bytesPerMillisecond: 10_000, size: sizes,
                                    stuckIndex: 120, stuck: 1500)
        let snapshot = stuck.snapshot(now: Self.at(60_000))
        #expect(snapshot.stallEpisodes == 1)
        #expect(snapshot.stalledTime >= .milliseconds(1400), "\(snapshot.stalledTime)")
    }
}
