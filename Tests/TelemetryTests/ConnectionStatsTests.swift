import NIOCore
import Testing

@testable import Telemetry

/// Tests of `ConnectionStats`: every time is a chosen `NIODeadline`, never the clock.
@Suite struct ConnectionStatsTests {
    /// An arbitrary uptime the connection opens at, so times relative to it are exercised.
    static let openedAtNanoseconds: UInt64 = 5_000_000_000_000

    /// The deadline `milliseconds` after the connection opened.
    static func at(_ milliseconds: Double) -> NIODeadline {
        .uptimeNanoseconds(openedAtNanoseconds + UInt64(milliseconds * 1_000_000))
    }

    static func makeStats(threshold: Duration? = nil) -> ConnectionStats {
        ConnectionStats(laneID: 3, side: .source, stallThreshold: threshold, now: at(0))
    }

    /// Sends a request at `sentAt` ms and completes it successfully at `completedAt` ms.
    static func roundTrip(
        _ stats: ConnectionStats, bytes: UInt64 = 4096, sentAt: Double, completedAt: Double
    ) {
        let token = stats.requestSent(bytes: bytes, now: at(sentAt))
        stats.requestCompleted(token, succeeded: true, now: at(completedAt))
    }

    /// Whether `duration` is within `relativeTolerance` of `milliseconds`.
    static func isClose(_ duration: Duration?, toMilliseconds milliseconds: Double, relativeTolerance: Double = 0.002) -> Bool {
        guard let duration else { return false }
        let seconds = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        return abs(seconds * 1000 - milliseconds) <= milliseconds * relativeTolerance
    }

    // MARK: Rate

    @Test func rateCountsSuccessfulBytesOverTheTrailingSecond() {
        let stats = Self.makeStats()
        Self.roundTrip(stats, bytes: 1000, sentAt: 0, completedAt: 50)
        Self.roundTrip(stats, bytes: 2000, sentAt: 400, completedAt: 450)
        let failed = stats.requestSent(bytes: 7000, now: Self.at(460))
        stats.requestCompleted(failed, succeeded: false, now: Self.at(470))

        let early = stats.snapshot(now: Self.at(500))
        #expect(early.bytes == 3000)
        #expect(early.bytesPerSecond == 3000)
        // (0.3 s, 1.3 s] holds only the completion at 450 ms.
        #expect(stats.snapshot(now: Self.at(1300)).bytesPerSecond == 2000)
        // (1.0 s, 2.0 s] holds nothing.
        #expect(stats.snapshot(now: Self.at(2000)).bytesPerSecond == 0)
        #expect(stats.snapshot(now: Self.at(2000)).bytes == 3000)
    }

    @Test func steadyStreamReadsItsRateAtAnyMoment() {
        let stats = Self.makeStats()
        // 100,000 bytes every 10 ms: 10 MB/s, looked at now and then while it runs.
        var moments: [Double] = [1537, 2000, 2555, 2990]
        for step in 0..<300 {
            let time = Double(step) * 10
            while let moment = moments.first, moment < time {
                moments.removeFirst()
                let rate = stats.snapshot(now: Self.at(moment)).bytesPerSecond
                #expect(abs(rate - 10_000_000) <= 10_000_000 * 0.02, "rate \(rate) at \(moment) ms")
            }
            Self.roundTrip(stats, bytes: 100_000, sentAt: time, completedAt: time)
        }
        let rate = stats.snapshot(now: Self.at(2990)).bytesPerSecond
        #expect(abs(rate - 10_000_000) <= 10_000_000 * 0.02, "rate \(rate) at the end")
    }

    @Test func rateHistoryHasOneValuePerWholeSecondOldestFirst() {
        let stats = Self.makeStats()
        #expect(stats.snapshot(now: Self.at(900)).rateHistory.isEmpty)
        Self.roundTrip(stats, bytes: 1000, sentAt: 100, completedAt: 200)
        Self.roundTrip(stats, bytes: 3000, sentAt: 2400, completedAt: 2500)
        // Second 2 is not over at 2.9 s.
        #expect(stats.snapshot(now: Self.at(2900)).rateHistory == [1000, 0])
        #expect(stats.snapshot(now: Self.at(3200)).rateHistory == [1000, 0, 3000])
    }

    @Test func rateHistoryKeepsTheLastSixtySeconds() {
        let stats = Self.makeStats()
        for second in 0..<70 {
            let time = Double(second) * 1000 + 500
            Self.roundTrip(stats, bytes: UInt64(second + 1) * 10, sentAt: time, completedAt: time)
        }
        let history = stats.snapshot(now: Self.at(70_000)).rateHistory
        #expect(history.count == 60)
        #expect(history.first == 110)  // second 10
        #expect(history.last == 700)  // second 69
        #expect(history == (10..<70).map { Double($0 + 1) * 10 })
        // After a long idle stretch, the history is all zeros.
        #expect(stats.snapshot(now: Self.at(200_000)).rateHistory == Array(repeating: 0, count: 60))
    }

    // MARK: In flight

    @Test func outOfOrderCompletionKeepsTheOldestAge() {
        let stats = Self.makeStats()
        let a = stats.requestSent(bytes: 100, now: Self.at(0))
        let b = stats.requestSent(bytes: 200, now: Self.at(10))
        let c = stats.requestSent(bytes: 300, now: Self.at(20))

        var snapshot = stats.snapshot(now: Self.at(30))
        #expect(snapshot.inFlight == 3)
        #expect(snapshot.inFlightBytes == 600)
        #expect(snapshot.oldestInFlight == .milliseconds(30))

        stats.requestCompleted(b, succeeded: true, now: Self.at(40))
        snapshot = stats.snapshot(now: Self.at(50))
        #expect(snapshot.inFlight == 2)
        #expect(snapshot.inFlightBytes == 400)
        #expect(snapshot.oldestInFlight == .milliseconds(50))

        stats.requestCompleted(a, succeeded: true, now: Self.at(60))
        snapshot = stats.snapshot(now: Self.at(70))
        #expect(snapshot.oldestInFlight == .milliseconds(50))  // c, sent at 20 ms

        stats.requestCompleted(c, succeeded: true, now: Self.at(80))
        snapshot = stats.snapshot(now: Self.at(90))
        #expect(snapshot.inFlight == 0)
        #expect(snapshot.inFlightBytes == 0)
        #expect(snapshot.oldestInFlight == nil)
        #expect(snapshot.bytes == 600)
    }

    @Test func oldestMatchesAModelUnderHeavyOutOfOrderChurn() {
        let stats = Self.makeStats()
        // Requests sent at millisecond `n` with `n` bytes; a deterministic mix of orders:
        // most complete soon, out of order, and some wait for a long time.
        var model: [(token: ConnectionStats.RequestToken, sentAt: Int)] = []
        var random: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next(_ bound: Int) -> Int {
            random = random &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((random >> 33) % UInt64(bound))
        }
        for step in 0..<20_000 {
            let token = stats.requestSent(bytes: UInt64(step), now: Self.at(Double(step)))
            model.append((token, step))
            if next(100) < 97 {
                let victim = next(3) == 0 ? next(model.count) : model.count - 1 - next(min(4, model.count))
                stats.requestCompleted(model[victim].token, succeeded: true, now: Self.at(Double(step)))
                model.remove(at: victim)
            }
            if step % 997 == 0 {
                let snapshot = stats.snapshot(now: Self.at(Double(step)))
                #expect(snapshot.inFlight == model.count)
                #expect(snapshot.inFlightBytes == model.reduce(0) { $0 + UInt64($1.sentAt) })
                let expectedAge = model.map(\.sentAt).min().map { Duration.milliseconds(step - $0) }
                #expect(snapshot.oldestInFlight == expectedAge)
            }
        }
        #expect(model.count > 100)  // some requests stayed long enough to exercise compaction
        for request in model { stats.requestCompleted(request.token, succeeded: true, now: Self.at(30_000)) }
        let drained = stats.snapshot(now: Self.at(30_000))
        #expect(drained.inFlight == 0)
        #expect(drained.inFlightBytes == 0)
        #expect(drained.oldestInFlight == nil)
    }

    // MARK: Latency

    @Test func latencyPercentilesOfKnownSamples() {
        let stats = Self.makeStats()
        #expect(stats.snapshot(now: Self.at(0)).latencyP50 == nil)
        #expect(stats.snapshot(now: Self.at(0)).latencyP99 == nil)
        // Round trips of 1, 2, ... 100 ms.
        for milliseconds in 1...100 {
            let sentAt = Double(milliseconds) * 20
            Self.roundTrip(stats, sentAt: sentAt, completedAt: sentAt + Double(milliseconds))
        }
        let snapshot = stats.snapshot(now: Self.at(2200))
        #expect(Self.isClose(snapshot.latencyP50, toMilliseconds: 50))
        #expect(Self.isClose(snapshot.latencyP99, toMilliseconds: 99))
    }

    @Test func latencyLongerThanTheHistogramIsClamped() {
        let stats = Self.makeStats()
        Self.roundTrip(stats, sentAt: 0, completedAt: 20 * 60 * 1000)  // 20 minutes
        let snapshot = stats.snapshot(now: Self.at(20 * 60 * 1000))
        #expect(Self.isClose(snapshot.latencyP99, toMilliseconds: 600_000))
        #expect(snapshot.bytes == 4096)
    }

    @Test func latencyCoversTheCurrentAndPreviousFiveSeconds() {
        let stats = Self.makeStats()
        for step in 0..<10 { Self.roundTrip(stats, sentAt: Double(step) * 100, completedAt: Double(step) * 100 + 40) }
        #expect(Self.isClose(stats.snapshot(now: Self.at(4000)).latencyP50, toMilliseconds: 40))
        // Window 1 (5-10 s): window 0 still counts.
        for step in 0..<30 { Self.roundTrip(stats, sentAt: 6000 + Double(step) * 10, completedAt: 6000 + Double(step) * 10 + 1) }
        let mixed = stats.snapshot(now: Self.at(7000))
        #expect(Self.isClose(mixed.latencyP50, toMilliseconds: 1))
        #expect(Self.isClose(mixed.latencyP99, toMilliseconds: 40))
        // Window 2 (10-15 s): window 0 is gone, window 1 remains.
        #expect(Self.isClose(stats.snapshot(now: Self.at(11_000)).latencyP99, toMilliseconds: 1))
        // Window 3: nothing recent.
        #expect(stats.snapshot(now: Self.at(15_000)).latencyP50 == nil)
    }

    // MARK: Errors and robustness

    @Test func failuresAndRetriesAreCounted() {
        let stats = Self.makeStats()
        let ok = stats.requestSent(bytes: 1000, now: Self.at(0))
        let bad = stats.requestSent(bytes: 5000, now: Self.at(0))
        let alsoOK = stats.requestSent(bytes: 2000, now: Self.at(0))
        stats.requestCompleted(ok, succeeded: true, now: Self.at(1))
        stats.requestCompleted(bad, succeeded: false, now: Self.at(4000))
        stats.requestCompleted(alsoOK, succeeded: true, now: Self.at(1))
        stats.recordRetry()
        stats.recordRetry()
        let snapshot = stats.snapshot(now: Self.at(4000))
        #expect(snapshot.errors == 1)
        #expect(snapshot.retries == 2)
        #expect(snapshot.bytes == 3000)
        #expect(snapshot.inFlight == 0)
        // The failure's 4 s wait is not a round trip.
        #expect(Self.isClose(snapshot.latencyP99, toMilliseconds: 1))
    }

    @Test func unknownAndRepeatedTokensAreIgnored() {
        let stats = Self.makeStats()
        let token = stats.requestSent(bytes: 1000, now: Self.at(0))
        let other = stats.requestSent(bytes: 500, now: Self.at(0))
        stats.requestCompleted(token, succeeded: false, now: Self.at(10))
        stats.requestCompleted(token, succeeded: false, now: Self.at(11))
        stats.requestCompleted(token, succeeded: true, now: Self.at(12))
        stats.requestCompleted(123_456, succeeded: true, now: Self.at(13))
        let snapshot = stats.snapshot(now: Self.at(20))
        #expect(snapshot.errors == 1)
        #expect(snapshot.bytes == 0)
        #expect(snapshot.inFlight == 1)
        #expect(snapshot.inFlightBytes == 500)
        #expect(snapshot.oldestInFlight == .milliseconds(20))
        stats.requestCompleted(other, succeeded: true, now: Self.at(30))
        #expect(stats.snapshot(now: Self.at(30)).bytes == 500)
    }

    @Test func identityAndStateAreCopiedOut() {
        let stats = ConnectionStats(laneID: 7, side: .destination, stallThreshold: nil, now: Self.at(0))
        #expect(stats.snapshot(now: Self.at(0)) == ConnectionSnapshot(laneID: 7, side: .destination))
        stats.state = .failed
        stats.failureReason = "connection reset"
        let snapshot = stats.snapshot(now: Self.at(1))
        #expect(snapshot.laneID == 7)
        #expect(snapshot.side == .destination)
        #expect(snapshot.state == .failed)
        #expect(snapshot.failureReason == "connection reset")
    }
}
