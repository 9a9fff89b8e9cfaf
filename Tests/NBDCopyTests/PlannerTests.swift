import NIOConcurrencyHelpers
import Testing

@testable import NBDCopy

/// Tests of `Planner`'s arithmetic: item sizes and boundaries, extent windows, ranges
/// given back by a failed lane, and `completedPrefix`. No I/O: `PlannerDriver` plays the
/// lanes and `ScriptedExtents` the source's block status.
@Suite struct PlannerTests {
    static let kib: UInt64 = 1 << 10
    static let mib: UInt64 = 1 << 20

    static func copy(_ offset: UInt64, _ length: UInt64) -> WorkItem { WorkItem(offset: offset, length: length, kind: .copy) }
    static func zero(_ offset: UInt64, _ length: UInt64) -> WorkItem { WorkItem(offset: offset, length: length, kind: .zero) }

    /// The item `next` hands out, or nil (recorded as an issue) when it hands out none.
    static func takeWork(_ planner: Planner, waiter: @escaping @Sendable () -> Void = {}) -> WorkItem? {
        guard case .work(let item) = planner.next(waiter: waiter) else {
            Issue.record("expected a work item")
            return nil
        }
        return item
    }

    /// Completes `item` whole.
    static func complete(_ planner: Planner, _ item: WorkItem) {
        planner.complete(item, bytes: item.length, zeroed: item.kind == .zero ? item.length : 0, skipped: 0)
    }

    /// A planner without extents over `itemCount` full items of `requestSize`.
    static func plainPlanner(itemCount: UInt64, requestSize: UInt64 = 64 << 10) -> Planner {
        Planner(.testing(size: itemCount * requestSize, requestSize: requestSize, useExtents: false))
    }

    // MARK: Sizes and alignment

    @Test func lastItemIsShorterAndNothingPassesTheImageEnd() {
        let requestSize = 256 * Self.kib
        let size = 3 * requestSize + 1000
        let driver = PlannerDriver(.testing(size: size, requestSize: requestSize, useExtents: false),
                                   source: ScriptedExtents(lengths: [size]))
        driver.runToEnd()
        #expect(driver.handedOut == [Self.copy(0, requestSize), Self.copy(requestSize, requestSize),
                                     Self.copy(2 * requestSize, requestSize), Self.copy(3 * requestSize, 1000)])
        driver.checkFinishedCopy()
    }

    /// (source minimum, destination minimum): 512 B, 4 KiB and 64 KiB, mixed.
    static let blockSizePairs: [(UInt64, UInt64)] = [
        (512, 512), (512, 4096), (4096, 512), (512, 65536), (65536, 512), (4096, 65536), (65536, 65536),
    ]

    @Test(arguments: blockSizePairs)
    func mixedBlockSizesAlignEveryBoundaryToBothEndpoints(sourceMinimum: UInt64, destinationMinimum: UInt64) {
        // As the engine derives them: the alignment is the larger minimum (block sizes are
        // powers of two, so a multiple of both), the request size is aligned down to it.
        let alignment = max(sourceMinimum, destinationMinimum)
        let requestSize = 200_000 - 200_000 % alignment
        // Runs in the source's granularity, none aligned to 4 KiB, one zero run long
        // enough to hold 64 KiB blocks; the image end is off every alignment.
        let source = ScriptedExtents(lengths: [1536, 70_000, 3584, 300_000, 131_072 + 512, 500_000, 1234])
        let driver = PlannerDriver(.testing(size: source.size, requestSize: requestSize, alignment: alignment,
                                            extentsWindow: 256 * Self.kib),
                                   source: source)
        driver.runToEnd()
        driver.checkFinishedCopy()
        for item in driver.completed where item.end != source.size {
            #expect(item.offset % sourceMinimum == 0 && item.end % sourceMinimum == 0, "\(item) against the source")
            #expect(item.offset % destinationMinimum == 0 && item.end % destinationMinimum == 0, "\(item) against the destination")
        }
        #expect(driver.completed.contains { $0.kind == .zero }, "the long zero runs are zeroed, not copied")
    }

    @Test func zeroRunsAreSplitAtTheMaximumZeroLength() {
        let source = ScriptedExtents(lengths: [3 * Self.mib + 4096], firstIsZero: true)
        let driver = PlannerDriver(.testing(size: source.size, maximumZeroLength: Self.mib), source: source)
        driver.runToEnd()
        #expect(driver.handedOut == [Self.zero(0, Self.mib), Self.zero(Self.mib, Self.mib),
                                     Self.zero(2 * Self.mib, Self.mib), Self.zero(3 * Self.mib, 4096)])
        driver.checkFinishedCopy()
    }

    // MARK: Extent windows

    @Test(arguments: [false, true])
    func zeroRunAcrossAWindowBoundary(serverDescribesPastTheRequest: Bool) {
        var source = ScriptedExtents(lengths: [512 * Self.kib, Self.mib, 512 * Self.kib])
        source.describesPastTheRequest = serverDescribesPastTheRequest
        let driver = PlannerDriver(.testing(size: source.size, alignment: 4096, extentsWindow: Self.mib), source: source)
        driver.runToEnd()
        let head = [Self.copy(0, 256 * Self.kib), Self.copy(256 * Self.kib, 256 * Self.kib)]
        let tail = [Self.copy(1536 * Self.kib, 256 * Self.kib), Self.copy(1792 * Self.kib, 256 * Self.kib)]
        if serverDescribesPastTheRequest {
            // The whole run was described with the first window: one item, and the next
            // window starts where the run ends.
            #expect(driver.handedOut == head + [Self.zero(512 * Self.kib, Self.mib)] + tail)
            #expect(driver.fetches.map(\.offset) == [0, 1536 * Self.kib])
            #expect(driver.fetches.map(\.length) == [UInt32(Self.mib), UInt32(512 * Self.kib)])
        } else {
            // The window boundary cuts the run: zeroed in two items, still exactly once.
            #expect(driver.handedOut == head + [Self.zero(512 * Self.kib, 512 * Self.kib), Self.zero(Self.mib, 512 * Self.kib)] + tail)
            #expect(driver.fetches.map(\.offset) == [0, Self.mib])
            #expect(driver.fetches.map(\.length) == [UInt32(Self.mib), UInt32(Self.mib)])
        }
        driver.checkFinishedCopy()
    }

    @Test func dataRunSplitByAWindowIsCutAtTheWindow() {
        var source = ScriptedExtents(lengths: [1280 * Self.kib, 768 * Self.kib])
        source.describesPastTheRequest = false
        let requestSize = 384 * Self.kib
        let driver = PlannerDriver(.testing(size: source.size, requestSize: requestSize, alignment: 64 * Self.kib,
                                            extentsWindow: Self.mib),
                                   source: source)
        driver.runToEnd()
        #expect(driver.handedOut == [
            Self.copy(0, requestSize), Self.copy(requestSize, requestSize), Self.copy(2 * requestSize, 256 * Self.kib),
            Self.copy(Self.mib, 256 * Self.kib), Self.zero(1280 * Self.kib, 768 * Self.kib),
        ])
        driver.checkFinishedCopy()
    }

    @Test func aServerThatStopsEarlyIsAskedAgainFromWhereItStopped() {
        var source = ScriptedExtents(lengths: [4096, 8192, 4096, 8192, 4096])
        source.maximumExtentsPerAnswer = 2
        let driver = PlannerDriver(.testing(size: source.size, alignment: 4096), source: source)
        driver.runToEnd()
        #expect(driver.fetches.map(\.offset) == [0, 12288, 24576])
        driver.checkFinishedCopy()
    }

    @Test func anExtentsRequestErrorCopiesTheWindowAsData() {
        let size = 3 * Self.mib
        let planner = Planner(.testing(size: size, extentsWindow: 2 * Self.mib))
        guard case .fetchExtents(0, let length) = planner.next(waiter: {}) else {
            Issue.record("expected a block status request at 0")
            return
        }
        #expect(length == UInt32(2 * Self.mib))
        planner.extentsArrived(.failure(EndpointError(.request, "block status not supported")), offset: 0)
        let items = (0..<8).compactMap { _ in Self.takeWork(planner) }
        #expect(items == (0..<8).map { Self.copy(UInt64($0) * 256 * Self.kib, 256 * Self.kib) })
        guard case .fetchExtents(2 * Self.mib, _) = planner.next(waiter: {}) else {
            Issue.record("expected the next window to be asked about")
            return
        }
    }

    @Test func aLostConnectionDuringAFetchLetsAnotherLaneAskAgain() {
        let planner = Planner(.testing(size: 4 * Self.mib))
        guard case .fetchExtents(0, _) = planner.next(waiter: {}) else {
            Issue.record("expected a block status request at 0")
            return
        }
        let woken = NIOLockedValueBox(false)
        guard case .wait = planner.next(waiter: { woken.withLockedValue { $0 = true } }) else {
            Issue.record("a second lane waits while the first fetches")
            return
        }
        planner.extentsArrived(.failure(EndpointError(.connection, "connection reset")), offset: 0)
        #expect(woken.withLockedValue { $0 })
        guard case .fetchExtents(0, _) = planner.next(waiter: {}) else {
            Issue.record("expected the same window to be asked about again")
            return
        }
    }

    // MARK: Skipped zero ranges

    @Test func skippedZeroRangesCountAsDoneWithoutAnItem() {
        let source = ScriptedExtents(lengths: [256 * Self.kib, 768 * Self.kib, 256 * Self.kib])
        let driver = PlannerDriver(.testing(size: source.size, skipZeroRanges: true), source: source)
        driver.runToEnd()
        #expect(driver.handedOut == [Self.copy(0, 256 * Self.kib), Self.copy(Self.mib, 256 * Self.kib)])
        #expect(driver.planner.currentProgress.bytesSkipped == 768 * Self.kib)
        driver.checkFinishedCopy()
    }

    // MARK: Ranges given back

    @Test func givenBackRangesAreHandedOutFirstInOffsetOrder() {
        let planner = Self.plainPlanner(itemCount: 8)
        let first = (0..<4).compactMap { _ in Self.takeWork(planner) }
        planner.giveBack([first[2], first[1]])
        #expect(Self.takeWork(planner) == first[1])
        #expect(Self.takeWork(planner) == first[2])
        #expect(Self.takeWork(planner)?.offset == 4 * 64 * Self.kib)
    }

    @Test func givenBackRangesCountProgressOnce() {
        let planner = Self.plainPlanner(itemCount: 2)
        guard let first = Self.takeWork(planner), let second = Self.takeWork(planner) else { return }
        Self.complete(planner, first)
        planner.giveBack([second])
        #expect(planner.currentProgress.bytesDone == first.length)
        guard let again = Self.takeWork(planner) else { return }
        #expect(again == second)
        Self.complete(planner, again)
        #expect(planner.currentProgress.bytesDone == 2 * 64 * Self.kib)
        #expect(planner.isFinished)
    }

    @Test func aPlannerIsNotFinishedWhileAGivenBackRangeIsOpen() {
        let planner = Self.plainPlanner(itemCount: 3)
        let items = (0..<3).compactMap { _ in Self.takeWork(planner) }
        Self.complete(planner, items[0])
        Self.complete(planner, items[2])
        planner.giveBack([items[1]])
        // Every range was handed out once, and only one is missing.
        #expect(!planner.isFinished)
        #expect(Self.takeWork(planner) == items[1])
        #expect(!planner.isFinished)
        Self.complete(planner, items[1])
        #expect(planner.isFinished)
        guard case .finished = planner.next(waiter: {}) else {
            Issue.record("expected finished")
            return
        }
    }

    @Test func aLaneWaitingAtTheEndIsWokenByAGivenBackRange() {
        let planner = Self.plainPlanner(itemCount: 1)
        guard let item = Self.takeWork(planner) else { return }
        let woken = NIOLockedValueBox(false)
        guard case .wait = planner.next(waiter: { woken.withLockedValue { $0 = true } }) else {
            Issue.record("a lane waits at the end while another holds the last item")
            return
        }
        planner.giveBack([item])
        #expect(woken.withLockedValue { $0 })
        #expect(Self.takeWork(planner) == item)
    }

    @Test func completedPrefixStopsAtTheLowestUnfinishedRange() {
        let planner = Self.plainPlanner(itemCount: 4)
        let items = (0..<4).compactMap { _ in Self.takeWork(planner) }
        #expect(planner.completedPrefix == 0)
        Self.complete(planner, items[0])
        Self.complete(planner, items[2])
        #expect(planner.completedPrefix == items[1].offset)
        planner.giveBack([items[1]])
        #expect(planner.completedPrefix == items[1].offset)
        Self.complete(planner, items[3])
        #expect(planner.completedPrefix == items[1].offset)
        guard let again = Self.takeWork(planner) else { return }
        #expect(planner.completedPrefix == items[1].offset)
        Self.complete(planner, again)
        #expect(planner.completedPrefix == items[3].end)
    }

    @Test func aFailingLaneLeavesEveryRangeCopiedOnce() {
        let source = ScriptedExtents(lengths: [300_000, 1_048_576, 700_000, 2_000_000, 12_345])
        let driver = PlannerDriver(.testing(size: source.size, alignment: 4096, extentsWindow: Self.mib),
                                   source: source, requestsInFlight: 4)
        driver.runToEnd(failingEvery: 7)
        #expect(driver.handedOut.count > driver.completed.count, "ranges were given back and handed out again")
        driver.checkFinishedCopy()
    }
}
