import Testing

@testable import NBDCopy
import Telemetry

/// The first look on a light server that shares this machine's cores: one lane a core,
/// then larger requests two rungs at once; and lanes on a light server are never kept on
/// an early window.
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

    @Test func aLightServerOnSharedCoresGetsOneLaneACoreThenLargerRequests() throws {
        let run = AutoTunerTests.simulate(seconds: 30, sizes: Self.sizes, sharedCores: 2, rate: Self.nullOnTwoCores)
        let first = try #require(run.decisions.first)
        #expect(first.at < .milliseconds(500))
        #expect(first.decision.action == .dropLane && first.decision.lanesBefore == 4 && first.decision.lanesAfter == 2,
                "\(first.decision.reason)")
        #expect(first.decision.reason.contains("one lane a core"))
        // Kept, then 256K → 1M in one step.
        #expect(run.decisions.contains { $0.decision.action == .growRequestSize
                && $0.decision.requestSizeBefore == 256 << 10 && $0.decision.requestSizeAfter == 1 << 20 })
        #expect(run.lanes.first { $0.at == .seconds(10) }?.count == 2)
        #expect(run.finalLanes == 2, "\(run.decisions.map(\.decision.reason))")
        #expect(run.finalRequestSize == 1 << 20, "\(run.decisions.map(\.decision.reason))")
    }

    @Test func aLightServerAcrossTheNetworkKeepsItsLanesAtFirst() {
        let run = AutoTunerTests.simulate(seconds: 30, sizes: Self.sizes, sharedCores: nil, rate: Self.nullOnTwoCores)
        #expect(!run.decisions.contains { $0.at < .milliseconds(500) })
        #expect(!run.decisions.contains { $0.decision.reason.contains("one lane a core") })
    }

    /// 4 lanes of 256K at 2.2 GB/s: 0.48 ms a request, under the first look's threshold
    /// but too slow to be cut (a parallel server with a 5 ms delay reads 0.45–0.8 ms).
    @Test func aServerNearTheFirstLooksThresholdKeepsItsLanes() {
        let run = AutoTunerTests.simulate(seconds: 10, sizes: Self.sizes, sharedCores: 2) { _, _, _ in 2.2e9 }
        #expect(!run.decisions.contains { $0.decision.reason.contains("one lane a core") })
        #expect(!run.decisions.contains { $0.at < .milliseconds(500) })
    }

    /// A light server whose 2 lanes copy 20% slower than 4: the cut is given back whole.
    @Test func aCutThatLosesIsGivenBack() throws {
        let run = AutoTunerTests.simulate(seconds: 20, sizes: [256 << 10], sharedCores: 2) { lanes, _, _ in
            lanes >= 4 ? 4e9 : 3.2e9
        }
        let cut = try #require(run.decisions.first)
        #expect(cut.decision.action == .dropLane && cut.decision.lanesAfter == 2)
        #expect(run.decisions.contains { $0.decision.action == .addLane && $0.decision.lanesBefore == 2
                && $0.decision.lanesAfter == 4 && $0.decision.reason.contains("given back") })
        #expect(run.finalLanes >= 4, "\(run.decisions.map(\.decision.reason))")
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
}
