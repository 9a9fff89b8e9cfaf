import Testing

@testable import NBDCopy

/// The planner driven to the end over many generated images: sizes, alignments, request
/// and window sizes, extent layouts, servers that stop early or describe past the
/// request, skipped zero ranges and failing lanes. Deterministic: every case comes from
/// its seed.
@Suite struct PlannerInvariantTests {
    /// One generated copy.
    struct Case: CustomTestStringConvertible, Sendable {
        let seed: UInt64
        let alignment: UInt64
        let requestSize: UInt64
        let extentsWindow: UInt64
        let maximumZeroLength: UInt64
        let useExtents: Bool
        let skipZeroRanges: Bool
        let runLengths: [UInt64]
        let firstRunIsZero: Bool
        let maximumExtentsPerAnswer: Int
        let describesPastTheRequest: Bool
        let failingEvery: Int?

        var testDescription: String {
            "seed \(seed): alignment \(alignment), request \(requestSize), window \(extentsWindow), "
                + "zero ≤ \(maximumZeroLength), \(runLengths.count) runs, \(runLengths.reduce(0, +)) bytes"
        }

        init(seed: UInt64) {
            var random = SplitMix64(seed: seed)
            self.seed = seed
            let blockSizes: [UInt64] = [512, 4096, 65536]
            // Both endpoints' minimums; the engine aligns to the larger.
            let alignment = max(random.pick(blockSizes), random.pick(blockSizes))
            self.alignment = alignment
            requestSize = alignment * random.next(in: 1...8)
            extentsWindow = alignment * random.next(in: 1...48)
            maximumZeroLength = random.next(in: 0...1) == 0 ? requestSize : alignment * random.next(in: 1...64)
            useExtents = random.next(in: 0...5) != 0
            skipZeroRanges = random.next(in: 0...3) == 0
            // Runs in bytes, mostly off the alignment: short ones (less than a block),
            // ones of a few blocks, and now and then a long one.
            let runCount = Int(random.next(in: 1...40))
            runLengths = (0..<runCount).map { _ in
                switch random.next(in: 0...9) {
                case 0...3: return random.next(in: 1...alignment)
                case 4...8: return random.next(in: 1...(6 * alignment))
                default: return random.next(in: 1...(40 * alignment))
                }
            }
            firstRunIsZero = random.next(in: 0...1) == 0
            maximumExtentsPerAnswer = random.next(in: 0...2) == 0 ? Int(random.next(in: 1...4)) : Int.max
            describesPastTheRequest = random.next(in: 0...1) == 0
            failingEvery = random.next(in: 0...2) == 0 ? Int(random.next(in: 5...13)) : nil
        }
    }

    static let cases = (1...60).map { Case(seed: UInt64($0)) }

    @Test(arguments: cases)
    func handedOutItemsTileTheImageOnce(_ testCase: Case) {
        var source = ScriptedExtents(lengths: testCase.runLengths, firstIsZero: testCase.firstRunIsZero)
        source.maximumExtentsPerAnswer = testCase.maximumExtentsPerAnswer
        source.describesPastTheRequest = testCase.describesPastTheRequest
        let driver = PlannerDriver(
            .testing(size: source.size, requestSize: testCase.requestSize, alignment: testCase.alignment,
                     useExtents: testCase.useExtents, extentsWindow: testCase.extentsWindow,
                     maximumZeroLength: testCase.maximumZeroLength, skipZeroRanges: testCase.skipZeroRanges),
            source: source)
        driver.runToEnd(failingEvery: testCase.failingEvery)
        driver.checkFinishedCopy()
        for fetch in driver.fetches {
            #expect(fetch.offset % testCase.alignment == 0 && fetch.length > 0, "fetch \(fetch)")
            #expect(fetch.offset + UInt64(fetch.length) <= source.size, "fetch \(fetch) past the end")
        }
    }
}
