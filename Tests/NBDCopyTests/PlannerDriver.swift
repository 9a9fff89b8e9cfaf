import Testing

@testable import NBDCopy

/// Drives a planner the way a lane does, without I/O: pulls work until a request limit is
/// reached, answers block status from a `ScriptedExtents` at once, completes the oldest
/// item when it must wait, and can fail, giving back what it has in flight.
///
/// It checks as it goes what must hold at every step: given-back ranges come out first,
/// and below `completedPrefix` every byte was completed.
final class PlannerDriver {
    let configuration: Planner.Configuration
    let planner: Planner
    let source: ScriptedExtents
    /// Items in flight before the oldest is completed (like `-R`).
    let requestsInFlight: Int
    private(set) var handedOut: [WorkItem] = []
    private(set) var completed: [WorkItem] = []
    private(set) var fetches: [(offset: UInt64, length: UInt32)] = []
    /// Oldest first.
    private(set) var inFlight: [WorkItem] = []
    /// Items given back and not yet handed out again, in the order they must come back.
    private var expectedReturns: [WorkItem] = []
    /// End of the completed items that tile [0, end) without a gap.
    private(set) var completedEnd: UInt64 = 0
    /// Ends of completed items past `completedEnd`, by offset.
    private var completedBeyond: [UInt64: UInt64] = [:]

    init(_ configuration: Planner.Configuration, source: ScriptedExtents, requestsInFlight: Int = 4) {
        self.configuration = configuration
        planner = Planner(configuration)
        self.source = source
        self.requestsInFlight = requestsInFlight
    }

    /// One call of `next`; a fetch is answered before this returns.
    @discardableResult
    func pull() -> Planner.Next {
        let next = planner.next(waiter: {})
        switch next {
        case .work(let item):
            if !expectedReturns.isEmpty {
                #expect(item == expectedReturns.removeFirst(), "a given-back range comes out before new work")
            }
            handedOut.append(item)
            inFlight.append(item)
        case .fetchExtents(let offset, let length):
            fetches.append((offset, length))
            planner.extentsArrived(.success(source.answer(offset: offset, length: length)), offset: offset)
        case .wait, .finished:
            break
        }
        return next
    }

    /// Completes the oldest item in flight, whole, as a lane does when every write is acknowledged.
    func completeOldest() {
        let item = inFlight.removeFirst()
        planner.complete(item, bytes: item.length, zeroed: item.kind == .zero ? item.length : 0, skipped: 0)
        completed.append(item)
        completedBeyond[item.offset] = item.end
        while let end = completedBeyond.removeValue(forKey: completedEnd) { completedEnd = end }
        checkCompletedPrefix()
    }

    /// Gives back everything in flight, as a lane whose connection broke does.
    func failInFlight() {
        planner.giveBack(inFlight)
        expectedReturns += inFlight.sorted { $0.offset < $1.offset }
        inFlight = []
        checkCompletedPrefix()
    }

    /// Pulls and completes until the planner says it is finished; with `failingEvery`,
    /// everything in flight is given back after every that many hand-outs.
    func runToEnd(failingEvery: Int? = nil) {
        // Between two failures the driver completes only what exceeds its request limit.
        precondition(failingEvery.map { $0 > requestsInFlight } ?? true, "a failure before the first completion never ends")
        // Far more steps than any test image needs: a planner that never finishes fails here.
        for _ in 0..<1_000_000 {
            if inFlight.count >= requestsInFlight {
                completeOldest()
                continue
            }
            switch pull() {
            case .work:
                if let failingEvery, handedOut.count % failingEvery == 0 { failInFlight() }
            case .fetchExtents:
                break
            case .wait:
                guard !inFlight.isEmpty else {
                    Issue.record("the planner waits while nothing is in flight and no fetch is pending")
                    return
                }
                completeOldest()
            case .finished:
                #expect(inFlight.isEmpty, "finished while items are in flight")
                return
            }
        }
        Issue.record("the planner did not finish")
    }

    /// Below `completedPrefix` every byte must be done. Skipped zero ranges are done
    /// without an item, so the check only applies when nothing is skipped.
    private func checkCompletedPrefix() {
        guard planner.currentProgress.bytesSkipped == 0 else { return }
        let prefix = planner.completedPrefix
        #expect(prefix <= completedEnd, "completedPrefix \(prefix) is past the first byte not completed (\(completedEnd))")
    }

    /// After `runToEnd`: what a finished copy must look like. The completed items tile
    /// [0, size) exactly once (gaps only where zero ranges were skipped), every boundary is
    /// aligned except the image end, no item is longer than allowed, only zero bytes are
    /// zeroed, and progress counted every byte once.
    func checkFinishedCopy() {
        let size = source.size
        let alignment = configuration.alignment
        var position: UInt64 = 0
        var skipped: UInt64 = 0
        var zeroed: UInt64 = 0
        for item in completed.sorted(by: { $0.offset < $1.offset }) {
            #expect(item.offset >= position, "\(item) overlaps what ends at \(position)")
            if item.offset > position {
                #expect(configuration.skipZeroRanges && source.readsAsZero(from: position, to: item.offset),
                        "nothing covers [\(position), \(item.offset))")
                skipped += item.offset - position
            }
            #expect(item.length > 0)
            #expect(item.offset % alignment == 0, "\(item) starts off the \(alignment)-byte alignment")
            #expect(item.end % alignment == 0 || item.end == size, "\(item) ends off the \(alignment)-byte alignment")
            switch item.kind {
            case .copy:
                #expect(item.length <= configuration.requestSize, "\(item) is longer than the request size")
            case .zero:
                #expect(item.length <= configuration.maximumZeroLength, "\(item) is longer than the zero limit")
                #expect(source.readsAsZero(from: item.offset, to: item.end), "\(item) zeroes data")
                zeroed += item.length
            }
            position = max(position, item.end)
        }
        #expect(position <= size, "items reach past the image end \(size)")
        if position < size {
            #expect(configuration.skipZeroRanges && source.readsAsZero(from: position, to: size), "nothing covers [\(position), \(size))")
            skipped += size - position
        }
        let progress = planner.currentProgress
        #expect(progress.bytesDone == size)
        #expect(progress.bytesZeroed == zeroed)
        #expect(progress.bytesSkipped == skipped)
        #expect(planner.isFinished)
        #expect(planner.completedPrefix == size)
        guard case .finished = planner.next(waiter: {}) else {
            Issue.record("a finished planner hands out more")
            return
        }
    }
}

extension Planner.Configuration {
    /// A known-size configuration with the engine's defaults unless told otherwise.
    static func testing(
        size: UInt64, requestSize: UInt64 = 256 << 10, alignment: UInt64 = 512, useExtents: Bool = true,
        extentsWindow: UInt64 = 1 << 30, maximumZeroLength: UInt64 = 1 << 30, skipZeroRanges: Bool = false
    ) -> Planner.Configuration {
        Planner.Configuration(size: size, requestSize: requestSize, alignment: alignment, useExtents: useExtents,
                              extentsWindow: extentsWindow, maximumZeroLength: maximumZeroLength,
                              skipZeroRanges: skipZeroRanges)
    }
}
