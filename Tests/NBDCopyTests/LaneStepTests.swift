import Testing

@testable import NBDCopy
import Telemetry

/// Lanes and sizes together: where the first look found a fixed cost per request, a lane
/// step doubles the lanes, and one that does not pay is taken back for half as many.
@Suite struct LaneStepTests {
    /// One request at a time per connection, 5 ms each plus the bytes at 600 MB/s, and a
    /// machine whose limit is `ceiling`.
    static func serialized(ceiling: Double) -> (Int, UInt64, Duration) -> Double {
        { lanes, size, _ in min(Double(lanes) * Double(size) / (0.005 + Double(size) / 600e6), ceiling) }
    }

    static func laneSteps(_ run: AutoTunerTests.Run) -> [(before: Int, after: Int)] {
        run.decisions.map(\.decision).filter { [.addLane, .dropLane].contains($0.action) }.map { ($0.lanesBefore, $0.lanesAfter) }
    }

    @Test func aSerializedServerDoublesItsLanesToTheLimit() throws {
        let run = AutoTunerTests.simulate(seconds: 30, sizes: FirstLookTests.ladder, ordinaryLargestSize: 8 << 20,
                                          largestFittedSize: 16 << 20, rate: Self.serialized(ceiling: 100e9))
        let steps = Self.laneSteps(run)
        #expect(steps.first.map { [$0.before, $0.after] } == [4, 8], "the first lane step doubles: \(steps)")
        #expect(steps.contains { $0.before == 8 && $0.after == 16 }, "and the next: \(steps)")
        #expect(run.lanes.first { $0.at == .seconds(10) }?.count == 16, "16 lanes within 10 s: \(steps)")
        #expect(run.finalLanes == 16 && run.finalRequestSize == 16 << 20)
    }

    @Test func aDoublingThatDoesNotPayIsHalved() {
        // Eight lanes of 16M requests reach the machine's limit: 12 and 16 are no faster.
        let perLane = Self.serialized(ceiling: .infinity)(1, 16 << 20, .zero)
        let run = AutoTunerTests.simulate(seconds: 40, sizes: FirstLookTests.ladder, ordinaryLargestSize: 8 << 20,
                                          largestFittedSize: 16 << 20, rate: Self.serialized(ceiling: 8 * perLane))
        let steps = Self.laneSteps(run)
        #expect(run.finalLanes == 8, "\(steps)")
        #expect(steps.contains { $0.before == 16 && $0.after == 8 }, "16 taken back: \(steps)")
        #expect(steps.contains { $0.before == 8 && $0.after == 12 }, "then half the way: \(steps)")
        #expect(run.mostLanes == 16)
        #expect(!run.decisions.contains { $0.decision.reason.contains("fewer") }, "more lanes paid: none dropped to see")
    }

    @Test func aDoublingMustPayFifteenPercent() {
        // Past eight lanes only a tenth more is to be had: doublings and halves are taken
        // back; the ninth lane, one step, pays its 5%.
        let perLane = Self.serialized(ceiling: .infinity)(1, 16 << 20, .zero)
        let run = AutoTunerTests.simulate(seconds: 40, sizes: FirstLookTests.ladder, ordinaryLargestSize: 8 << 20,
                                          largestFittedSize: 16 << 20, rate: Self.serialized(ceiling: 8.8 * perLane))
        let steps = Self.laneSteps(run)
        #expect(steps.contains { $0.before == 16 && $0.after == 8 }, "16 taken back for +10%: \(steps)")
        #expect(steps.contains { $0.before == 10 && $0.after == 8 }, "and 10: \(steps)")
        #expect(run.finalLanes == 9, "\(steps)")
    }

    @Test func aLightServerStillStepsOneLaneAtATime() {
        let run = AutoTunerTests.simulate(seconds: 60, initialLanes: 1, sizes: AutoTunerTests.sizes, rate: AutoTunerTests.plateau)
        #expect(Self.laneSteps(run).allSatisfy { abs($0.after - $0.before) == 1 })
        #expect(run.finalLanes == 3)
    }
}
