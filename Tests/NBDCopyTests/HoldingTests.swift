import Testing

@testable import NBDCopy
import Telemetry

/// What brings a hold back down to the lanes a server needs: a climb started again by a
/// marked change in the rate, while the machine is still changing under it, checks the
/// lanes it added against a moving baseline before it holds; and the periodic probe tries
/// a lane fewer in turn with a larger size and a lane more.
@Suite struct HoldingTests {
    /// null on 2 cores, held at its best (2 lanes of 1M), through a dip of the whole
    /// machine from 50 to 51.7 s (another tenant): 40% slower at any setting. The climb
    /// the dip starts again judges a lane added as the machine recovers against a rate
    /// read in the dip, and keeps it; the check of one lane fewer from a fresh window
    /// takes it away again.
    @Test func aLaneKeptWhileTheMachineRecoversFromADipIsCheckedAgain() {
        let run = AutoTunerTests.simulate(seconds: 80, sizes: LightServerTests.sizes, sharedCores: 2) { lanes, size, time in
            let dip = time >= .seconds(50) && time < .milliseconds(51_700)
            return LightServerTests.nullOnTwoCores(lanes, size, time) * (dip ? 0.6 : 1)
        }
        let reasons = run.decisions.map { "\($0.at) \($0.decision.lanesAfter)x\($0.decision.requestSizeAfter >> 10)K \($0.decision.reason)" }
        #expect(run.finalLanes == 2 && run.finalRequestSize == 1 << 20, "\(reasons)")
        let check = run.decisions.firstIndex { $0.decision.reason.hasPrefix("lanes were added while the rate was changing") }
        #expect(check.map { run.decisions[$0].decision.lanesBefore == 3 && run.decisions[$0].decision.lanesAfter == 2 } == true,
                "\(reasons)")
        #expect(run.lanes.first { $0.at == .seconds(60) }?.count == 2, "\(reasons)")
    }

    /// A server that becomes half again as fast a lane and serves twice the lanes at 50 s
    /// (a busy neighbour went away): the lanes the climb adds pay for good, and the check
    /// of one fewer gives its lane back.
    @Test func lanesThatPayAfterAChangeStay() {
        let run = AutoTunerTests.simulate(seconds: 80, sizes: [256 << 10]) { lanes, _, time in
            time < .seconds(50) ? Double(min(lanes, 3)) * 100e6 : Double(min(lanes, 6)) * 150e6
        }
        let reasons = run.decisions.map { "\($0.at) \($0.decision.lanesAfter) \($0.decision.reason)" }
        #expect(run.lanes.first { $0.at == .seconds(45) }?.count == 3, "\(reasons)")
        let check = run.decisions.firstIndex { $0.decision.reason.hasPrefix("lanes were added while the rate was changing") }
        #expect(check.map { run.decisions[$0].decision.lanesBefore == 6 } == true, "\(reasons)")
        #expect(check.map { run.decisions[($0 + 1)...].contains { $0.decision.reason.hasPrefix("lane 6 given back") } } == true,
                "\(reasons)")
        #expect(run.finalLanes == 6, "\(reasons)")
    }

    /// 3 lanes serve 100 MB/s each, and no more pay; from 40 s, 2 lanes serve 150 MB/s
    /// each (the server now spreads its work over fewer connections), the same 300 MB/s on
    /// 3 lanes: no change in the rate starts a climb. The periodic probe's lane fewer
    /// finds it, kept within 3%; the next one, to 1 lane, loses and is given back.
    @Test func thePeriodicProbeDropsALaneNoLongerNeeded() throws {
        let run = AutoTunerTests.simulate(seconds: 200, initialLanes: 1, sizes: [256 << 10]) { lanes, _, time in
            time < .seconds(40) ? Double(min(lanes, 3)) * 100e6 : Double(min(lanes, 2)) * 150e6
        }
        let reasons = run.decisions.map { "\($0.at) \($0.decision.lanesAfter) \($0.decision.reason)" }
        #expect(run.lanes.first { $0.at == .seconds(30) }?.count == 3, "\(reasons)")
        let fewer = run.decisions.filter { $0.decision.action == .dropLane && $0.decision.reason.hasPrefix("30 s since the last probe") }
        let first = try #require(fewer.first, "\(reasons)")
        #expect(first.decision.lanesBefore == 3 && first.decision.lanesAfter == 2, "\(reasons)")
        #expect(run.decisions.contains { $0.at > first.at && $0.decision.reason.hasPrefix("lane 3 dropped for good") }, "\(reasons)")
        let second = try #require(fewer.dropFirst().first, "\(reasons)")
        #expect(second.at - first.at >= .seconds(60) && second.decision.lanesAfter == 1, "\(reasons)")
        #expect(run.decisions.contains { $0.at > second.at && $0.decision.reason.hasPrefix("lane 2 given back") }, "\(reasons)")
        #expect(run.finalLanes == 2, "\(reasons)")
    }

    /// A serialized server that 4 lanes of 16M nearly fill (8 lanes copy 8% faster, 5 to 7
    /// no faster): lanes 5–8 and then 5–6 are taken back in the climb, no single lane added
    /// ever paid, and the periodic probe's lane 5 (half the way to the 6 taken back) is
    /// taken back too. Nothing follows it until the next periodic probe: its lane fewer is
    /// one of the periodic probe's own turns, not a follow-up.
    @Test func aPeriodicLaneTakenBackHasNoFollowUp() throws {
        let run = AutoTunerTests.simulate(seconds: 130, sizes: FirstLookTests.ladder, ordinaryLargestSize: 8 << 20,
                                          largestFittedSize: 16 << 20) { lanes, size, _ in
            Double(min(lanes, 4)) * Double(size) / (0.005 + Double(size) / 600e6) * (lanes >= 8 ? 1.08 : 1)
        }
        let reasons = run.decisions.map { "\($0.at) \($0.decision.lanesAfter) \($0.decision.reason)" }
        let periodicLane = try #require(run.decisions.first {
            $0.decision.action == .addLane && $0.decision.reason.hasPrefix("30 s since the last probe")
        }, "\(reasons)")
        let after = run.decisions.filter { $0.at > periodicLane.at && $0.at < periodicLane.at + .seconds(25) }
        #expect(after.map(\.decision.action) == [.dropLane], "\(reasons)")
        #expect(after.first?.decision.reason.contains("taken back") == true, "\(reasons)")
        #expect(run.finalLanes == 4, "\(reasons)")
    }
}
