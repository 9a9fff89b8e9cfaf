import Testing

@testable import NBDCopy
import Telemetry

/// The first look on a server that shares this machine's cores: one lane a core and
/// larger requests, one rung up on a light server and two on one whose requests have a
/// cost of their own, judged together; and lanes on a light server are never kept on an
/// early window.
@Suite struct LightServerTests {
    static let sizes: [UInt64] = [256 << 10, 512 << 10, 1 << 20, 2 << 20, 4 << 20, 8 << 20]

    /// null on 2 cores, roughly as measured: 1M requests are best, 2 lanes are best, and
    /// each lane past them costs a few percent. 4 lanes of 256K serve a request in
    /// 0.28 ms, a light server.
    static func nullOnTwoCores(_ lanes: Int, _ size: UInt64, _ time: Duration) -> Double {
        let bySize: [UInt64: Double] = [256 << 10: 4.0e9, 512 << 10: 4.5e9, 1 << 20: 5.0e9, 2 << 20: 4.8e9,
                                        4 << 20: 4.6e9, 8 << 20: 4.4e9]
        let byLanes = lanes == 1 ? 0.7 : 1 - 0.03 * Double(lanes - 2)
        return bySize[size, default: 4e9] * byLanes
    }

    @Test func aLightServerOnSharedCoresGetsOneLaneACoreAndLargerRequests() throws {
        let run = AutoTunerTests.simulate(seconds: 30, sizes: Self.sizes, sharedCores: 2, rate: Self.nullOnTwoCores)
        try #require(run.decisions.count >= 2)
        let (cut, grow) = (run.decisions[0], run.decisions[1])
        #expect(cut.at < .milliseconds(500) && grow.at == cut.at)
        #expect(cut.decision.action == .dropLane && cut.decision.lanesBefore == 4 && cut.decision.lanesAfter == 2,
                "\(cut.decision.reason)")
        #expect(cut.decision.reason.contains("one lane a core"))
        // 256K → 512K in the same decision, kept with the cut; the climb then finds 1M.
        #expect(grow.decision.action == .growRequestSize && grow.decision.requestSizeBefore == 256 << 10
                && grow.decision.requestSizeAfter == 512 << 10, "\(grow.decision.reason)")
        #expect(run.decisions.contains { $0.decision.reason.hasPrefix("lanes 3–4 dropped for good") })
        #expect(run.lanes.first { $0.at == .seconds(10) }?.count == 2)
        #expect(run.finalLanes == 2, "\(run.decisions.map(\.decision.reason))")
        #expect(run.finalRequestSize == 1 << 20, "\(run.decisions.map(\.decision.reason))")
    }

    @Test func aLightServerAcrossTheNetworkKeepsItsLanesAtFirst() {
        let run = AutoTunerTests.simulate(seconds: 30, sizes: Self.sizes, sharedCores: nil, rate: Self.nullOnTwoCores)
        #expect(!run.decisions.contains { $0.at < .milliseconds(500) })
        #expect(!run.decisions.contains { $0.decision.reason.contains("one lane a core") })
    }

    /// A parallel server with a 5 ms delay on 2 cores, roughly as measured: each lane's 16
    /// server threads serve through the delay, and the cores copy what those threads send,
    /// best on 2 lanes of 1M, each lane past 2 costing a few percent. 4 lanes of 256K serve
    /// a request in 0.85 ms: a cost of its own, short of a decisive one.
    static func parallelWithDelay(_ lanes: Int, _ size: UInt64, _ time: Duration) -> Double {
        let throughTheDelay = Double(lanes) * 16 * Double(size) / 0.0055
        let bySize: [UInt64: Double] = [256 << 10: 1.35e9, 512 << 10: 1.5e9, 1 << 20: 1.7e9, 2 << 20: 1.6e9,
                                        4 << 20: 1.55e9, 8 << 20: 1.5e9]
        let byLanes = 1 - 0.04 * Double(max(0, lanes - 2))
        return min(throughTheDelay, bySize[size, default: 1.5e9] * byLanes)
    }

    /// On shared cores, the first look cuts lanes to one a core with the size two rungs up,
    /// one move, kept; the climb finds nothing better and holds there.
    @Test func aServerWithACostPerRequestOnSharedCoresGetsOneLaneACoreAndFourTimesTheSize() throws {
        let run = AutoTunerTests.simulate(seconds: 20, sizes: Self.sizes, sharedCores: 2, rate: Self.parallelWithDelay)
        try #require(run.decisions.count >= 2)
        let (cut, grow) = (run.decisions[0], run.decisions[1])
        #expect(cut.at < .milliseconds(500) && grow.at == cut.at)
        #expect(cut.decision.action == .dropLane && cut.decision.lanesAfter == 2, "\(cut.decision.reason)")
        #expect(cut.decision.reason.contains("a request takes a lane 0.8 ms at 256K: a server on this machine's 2 cores, one lane a core"),
                "\(cut.decision.reason)")
        #expect(grow.decision.action == .growRequestSize && grow.decision.requestSizeAfter == 1 << 20, "\(grow.decision.reason)")
        #expect(run.decisions.contains { $0.decision.reason.hasPrefix("lanes 3–4 dropped for good") })
        #expect(run.finalLanes == 2 && run.finalRequestSize == 1 << 20, "\(run.decisions.map(\.decision.reason))")
    }

    /// The same server across the network: the cores are not shared, so the first look
    /// steps the size up three rungs and the lanes stay.
    @Test func aServerWithACostPerRequestAcrossTheNetworkKeepsItsLanes() throws {
        let run = AutoTunerTests.simulate(seconds: 10, sizes: Self.sizes, sharedCores: nil, rate: Self.parallelWithDelay)
        let first = try #require(run.decisions.first)
        #expect(first.decision.action == .growRequestSize && first.decision.requestSizeAfter == 2 << 20, "\(first.decision.reason)")
        #expect(!run.decisions.contains { $0.decision.reason.contains("one lane a core") })
    }

    /// A server that answers one request at a time per connection, 5 ms each, its request
    /// size fixed: a lane's request costs 5 ms, and fewer lanes without larger requests
    /// would halve the rate. No cut; the climb adds lanes.
    @Test func aSerializedServerWithItsSizeFixedIsNotCut() throws {
        let run = AutoTunerTests.simulate(seconds: 10, sizes: [256 << 10], sharedCores: 2) { lanes, size, _ in
            Double(lanes) * Double(size) / 0.005
        }
        let first = try #require(run.decisions.first)
        #expect(first.decision.action == .addLane && first.decision.lanesBefore == 4, "\(first.decision.reason)")
        #expect(!run.decisions.contains { $0.decision.reason.contains("one lane a core") })
        #expect(run.finalLanes > 4)
    }

    /// A light server whose 2 lanes copy 20% slower than 4 at any size: the cut and the
    /// size are both taken back.
    @Test func aCutThatLosesIsGivenBackWithItsSize() throws {
        let run = AutoTunerTests.simulate(seconds: 20, sizes: Self.sizes, sharedCores: 2) { lanes, _, _ in
            lanes >= 4 ? 4e9 : 3.2e9
        }
        let cut = try #require(run.decisions.first)
        #expect(cut.decision.action == .dropLane && cut.decision.lanesAfter == 2)
        let back = try #require(run.decisions.firstIndex { $0.decision.action == .addLane && $0.decision.reason.contains("given back") })
        #expect(run.decisions[back].decision.lanesBefore == 2 && run.decisions[back].decision.lanesAfter == 4)
        let shrink = run.decisions[back + 1].decision
        #expect(shrink.action == .shrinkRequestSize && shrink.requestSizeBefore == 512 << 10 && shrink.requestSizeAfter == 256 << 10,
                "\(shrink.reason)")
        #expect(run.finalLanes >= 4, "\(run.decisions.map(\.decision.reason))")
    }

    /// null whose first ticks read 25% over what 4 lanes sustain (pipelines filling, a
    /// faster moment): the cut, judged against them, is given back; a full window at
    /// 4 lanes then reads below what the cut copied, and the cut is made again for good.
    @Test func aCutGivenBackAgainstAnEarlyBaselineIsMadeAgainOnAFullWindow() throws {
        let run = AutoTunerTests.simulate(seconds: 30, sizes: Self.sizes, sharedCores: 2) { lanes, size, time in
            time <= .milliseconds(400) ? 5e9 : Self.nullOnTwoCores(lanes, size, time)
        }
        let back = try #require(run.decisions.firstIndex { $0.decision.reason.contains("given back") },
                                "\(run.decisions.map(\.decision.reason))")
        let again = try #require(run.decisions[back...].firstIndex { $0.decision.reason.contains("dropped again") },
                                 "\(run.decisions.map(\.decision.reason))")
        #expect(run.decisions[again].decision.lanesBefore == 4 && run.decisions[again].decision.lanesAfter == 2)
        let grow = run.decisions[again + 1].decision
        #expect(grow.action == .growRequestSize && grow.requestSizeBefore == 256 << 10 && grow.requestSizeAfter == 512 << 10,
                "\(grow.reason)")
        #expect(run.lanes.first { $0.at == .seconds(10) }?.count == 2)
        #expect(run.finalLanes == 2 && run.finalRequestSize == 1 << 20, "\(run.decisions.map(\.decision.reason))")
    }

    /// null, on a machine that slows down by a quarter for the first 1.5 s that 1M
    /// requests run (another tenant, not the size): 1M is taken back, tried once more from
    /// a fresh window of 512K, and kept. 2M, worse for good, is taken back twice.
    @Test func aLostSizeStepOnALightServerIsTriedOnceMore() throws {
        var largerSince: Duration?
        let run = AutoTunerTests.simulate(seconds: 30, sizes: Self.sizes, sharedCores: 2) { lanes, size, time in
            if size == 1 << 20 { largerSince = largerSince ?? time }
            let slow = largerSince.map { size == 1 << 20 && time - $0 < .milliseconds(1500) } ?? false
            return Self.nullOnTwoCores(lanes, size, time) * (slow ? 0.75 : 1)
        }
        let reasons = run.decisions.map { "\($0.at) \($0.decision.reason)" }
        let oneMeg = run.decisions.filter { $0.decision.action == .growRequestSize && $0.decision.requestSizeAfter == 1 << 20 }
        #expect(oneMeg.count == 2, "\(reasons)")
        #expect(oneMeg.last?.decision.reason.hasPrefix("once more, from a fresh window") == true, "\(reasons)")
        #expect(run.finalRequestSize == 1 << 20 && run.finalLanes == 2, "\(reasons)")
        let twoMeg = run.decisions.filter { $0.decision.action == .growRequestSize && $0.decision.requestSizeAfter == 2 << 20 }
        #expect(twoMeg.count == 2, "\(reasons)")
    }

    /// A fifth lane on a light server reads 20% faster for its first three ticks, then
    /// adds nothing: a window read early would keep it.
    @Test func aLaneOnALightServerIsNotKeptOnAnEarlyWindow() {
        var fiveSince: Duration?
        let run = AutoTunerTests.simulate(seconds: 20, sizes: [256 << 10]) { lanes, _, time in
            if lanes == 5 { fiveSince = fiveSince ?? time } else { fiveSince = nil }
            let fresh = fiveSince.map { time - $0 < .milliseconds(450) } ?? false
            return 3e9 * (fresh ? 1.2 : 1)
        }
        #expect(run.decisions.contains { $0.decision.action == .dropLane && $0.decision.lanesBefore == 5
                && $0.decision.reason.contains("taken back") }, "\(run.decisions.map(\.decision.reason))")
        #expect(run.mostLanes <= 5)
    }

    /// qemu-nbd at 1.4 GB/s on 4 lanes of 256K (0.75 ms a request) whose tick at 0.2 s
    /// reads 0.55 GB/s (1.9 ms): one slow tick, over the decisive 1.5 ms but short of 2 ms,
    /// is no decisive look, and no 16M step; the first look then sees the server as it is.
    @Test func oneSlowEarlyTickOfALightServerIsNotDecisive() {
        let run = AutoTunerTests.simulate(seconds: 5, sizes: FirstLookTests.ladder, ordinaryLargestSize: 8 << 20,
                                          largestFittedSize: 16 << 20, sharedCores: 2) { _, _, time in
            time == .milliseconds(200) ? 0.55e9 : 1.4e9
        }
        let reasons = run.decisions.map { "\($0.at) \($0.decision.reason)" }
        #expect(!run.decisions.contains { $0.decision.requestSizeAfter > 2 << 20 }, "\(reasons)")
        #expect(run.decisions.first?.decision.action == .dropLane, "\(reasons)")
    }

    /// qemu-nbd just started, beside a busy loop: its first ticks read 0.35 GB/s on 4 lanes
    /// of 256K (3 ms a request), then 2.5 GB/s (0.42 ms), and 16M copies 0.5 GB/s. The
    /// decisive look's 16M is taken back, and the first look it skipped comes after it:
    /// one lane a core with 512K, not a climb one lane at a time from 4.
    @Test func aDecisiveLookTakenBackIsFollowedByTheFirstLook() throws {
        let run = AutoTunerTests.simulate(seconds: 10, sizes: FirstLookTests.ladder, ordinaryLargestSize: 8 << 20,
                                          largestFittedSize: 16 << 20, sharedCores: 2) { lanes, size, time in
            if time <= .milliseconds(300) { return 0.35e9 }
            if size >= 16 << 20 { return 0.5e9 }
            return lanes == 2 ? 2.8e9 : 2.5e9
        }
        let reasons = run.decisions.map { "\($0.at) \($0.decision.reason)" }
        try #require(run.decisions.count >= 4, "\(reasons)")
        #expect(run.decisions[0].decision.requestSizeAfter == 16 << 20, "\(reasons)")
        #expect(run.decisions[1].decision.action == .shrinkRequestSize && run.decisions[1].decision.requestSizeAfter == 256 << 10,
                "\(reasons)")
        #expect(run.decisions[2].decision.action == .dropLane && run.decisions[2].decision.lanesAfter == 2
                && run.decisions[2].decision.reason.contains("one lane a core"), "\(reasons)")
        #expect(run.decisions[3].decision.requestSizeAfter == 512 << 10, "\(reasons)")
        #expect(run.mostLanes <= 4, "\(reasons)")
        #expect(!run.decisions.dropFirst().contains { $0.decision.requestSizeAfter == 16 << 20 }, "\(reasons)")
    }

    /// A server whose 256K request takes a lane 1.75 ms on every tick: the second tick in
    /// a row at 1.5 ms or more is decisive, straight to 16M.
    @Test func twoSlowTicksInARowAreDecisive() throws {
        let run = AutoTunerTests.simulate(seconds: 2, sizes: FirstLookTests.ladder, ordinaryLargestSize: 8 << 20,
                                          largestFittedSize: 16 << 20) { lanes, size, _ in
            Double(lanes) * Double(size) / 0.00175
        }
        let first = try #require(run.decisions.first)
        #expect(first.at == .milliseconds(300) && first.decision.requestSizeAfter == 16 << 20,
                "\(first.at) \(first.decision.reason)")
    }
}
