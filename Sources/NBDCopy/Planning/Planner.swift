import DequeModule
import NIOConcurrencyHelpers

/// Owns the image's address space and hands ranges to whichever lane has room.
///
/// Lanes pull work; nothing is partitioned up front, so a slow lane simply takes less.
/// Extents are asked for lazily, one window ahead of the cursor, by the lane that needs
/// them. Ranges a lane could not finish (dropped, failed, retried) come back and are
/// handed out first. The planner is shared by lanes on different event loops; its lock
/// is held only for the few instructions of a hand-out or a completion.
final class Planner: @unchecked Sendable {
    struct Configuration: Sendable {
        /// Image size; nil for a pipe source until its end is reached.
        var size: UInt64?
        /// Largest copy item (the request size) to start with; `setRequestSize` changes it.
        var requestSize: UInt64
        /// Every boundary the planner makes is a multiple of this (except the image end).
        var alignment: UInt64
        /// Ask the source which ranges read as zero.
        var useExtents: Bool
        /// How much to ask about at once.
        var extentsWindow: UInt64
        /// Largest zero item (large when the destination can zero cheaply).
        var maximumZeroLength: UInt64
        /// Ranges that read as zero need no request (the destination already reads as zero).
        var skipZeroRanges: Bool
    }

    /// What a lane should do next.
    enum Next {
        case work(WorkItem)
        /// Ask the source about this range and report with `extentsArrived`.
        case fetchExtents(offset: UInt64, length: UInt32)
        /// Nothing to hand out now; the waiter passed to `next` runs when that changes.
        case wait
        case finished
    }

    /// Progress counted on completion.
    struct Progress: Sendable {
        var bytesDone: UInt64 = 0
        var bytesZeroed: UInt64 = 0
        var bytesSkipped: UInt64 = 0
        /// Bytes of copy items completed: what was read from the source (and written, or
        /// found zero), the work the auto-tuner measures.
        var bytesCopied: UInt64 = 0
    }

    private let configuration: Configuration
    private let lock = NIOLock()
    private var size: UInt64?
    /// Largest copy item handed out from now on.
    private var requestSize: UInt64
    private var cursor: UInt64 = 0
    private var known = Deque<ImageExtent>()
    private var fetching = false
    private var returned = Deque<WorkItem>()
    /// Offsets of the items handed out and not yet completed or given back (a count per
    /// offset), for `completedPrefix`.
    private var outstanding: [UInt64: Int] = [:]
    private var outstandingCount = 0
    /// Bytes of the copy items outstanding: the work queued at the servers.
    private var outstandingCopyBytes: UInt64 = 0
    private var waiters: [@Sendable () -> Void] = []
    /// Lanes that found the planner finished: woken only when work comes back (a failed
    /// lane's ranges, unflushed writes to copy again), so idle lanes never wake each other.
    private var idleWaiters: [@Sendable () -> Void] = []
    private var progress = Progress()

    init(_ configuration: Configuration) {
        self.configuration = configuration
        self.size = configuration.size
        requestSize = configuration.requestSize
    }

    /// Copy items handed out from now on are at most `bytes` (already aligned and within
    /// both endpoints' limits); items in flight keep their size.
    func setRequestSize(_ bytes: UInt64) {
        lock.withLock { requestSize = bytes }
    }

    /// Whether every range of the image has been handed out at least once: no new work
    /// is left to tune for.
    var allHandedOut: Bool {
        lock.withLock { size.map { cursor >= $0 } ?? false }
    }

    /// The image size, once known.
    var imageSize: UInt64? { lock.withLock { size } }

    var currentProgress: Progress { lock.withLock { progress } }

    /// Bytes of copy ranges handed out and not completed yet: what is queued at the servers.
    var bytesInFlight: UInt64 { lock.withLock { outstandingCopyBytes } }

    /// The next thing for a lane to do. When the answer is `.wait`, `waiter` is kept and
    /// called once the planner has news (work returned, extents arrived, finished); when it
    /// is `.finished`, `waiter` is kept and called if work comes back.
    func next(waiter: @escaping @Sendable () -> Void) -> Next {
        let (next, wake) = lock.withLock { () -> (Next, [@Sendable () -> Void]) in
            let next = nextLocked()
            switch next {
            case .wait:
                waiters.append(waiter)
                return (next, [])
            case .finished:
                idleWaiters.append(waiter)
                return (next, takeWaitersLocked())
            default:
                return (next, [])
            }
        }
        wake.forEach { $0() }
        return next
    }

    private func nextLocked() -> Next {
        if let item = returned.popFirst() {
            markOutstanding(item)
            return .work(item)
        }
        while true {
            if let size, cursor >= size {
                return outstandingCount == 0 ? .finished : .wait
            }
            guard configuration.useExtents, let size else {
                let length = size.map { min(requestSize, $0 - cursor) } ?? requestSize
                return handOut(WorkItem(offset: cursor, length: length, kind: .copy))
            }
            guard let extent = known.first else {
                if fetching { return .wait }
                fetching = true
                let window = min(configuration.extentsWindow, size - cursor)
                return .fetchExtents(offset: cursor, length: UInt32(min(window, UInt64(UInt32.max) & ~(configuration.alignment - 1))))
            }
            if extent.isZero {
                let length = min(extent.length, configuration.maximumZeroLength)
                consumeKnown(length)
                if configuration.skipZeroRanges {
                    progress.bytesDone += length
                    progress.bytesSkipped += length
                    continue
                }
                return handOut(WorkItem(offset: extent.offset, length: length, kind: .zero))
            }
            let length = min(extent.length, requestSize)
            consumeKnown(length)
            return handOut(WorkItem(offset: extent.offset, length: length, kind: .copy))
        }
    }

    private func handOut(_ item: WorkItem) -> Next {
        if item.offset == cursor { cursor += item.length }
        markOutstanding(item)
        return .work(item)
    }

    private func markOutstanding(_ item: WorkItem) {
        outstanding[item.offset, default: 0] += 1
        outstandingCount += 1
        if item.kind == .copy { outstandingCopyBytes += item.length }
    }

    private func clearOutstanding(_ item: WorkItem) {
        outstandingCount -= 1
        if item.kind == .copy { outstandingCopyBytes -= item.length }
        if let count = outstanding[item.offset], count > 1 {
            outstanding[item.offset] = count - 1
        } else {
            outstanding[item.offset] = nil
        }
    }

    private func consumeKnown(_ length: UInt64) {
        var first = known.removeFirst()
        if first.length > length {
            first.offset += length
            first.length -= length
            known.prepend(first)
        }
        cursor += length
    }

    /// Extents from the source for the window starting at `offset`. On a request error the
    /// window is copied as data; on a lost connection another lane asks again.
    func extentsArrived(_ result: Result<[ImageExtent], EndpointError>, offset: UInt64) {
        let wake = lock.withLock { () -> [@Sendable () -> Void] in
            fetching = false
            guard offset == cursor, known.isEmpty, let size else { return takeWaitersLocked() }
            switch result {
            case .success(let extents):
                known.append(contentsOf: ExtentNormalizer.normalize(extents, from: offset, alignment: configuration.alignment, imageEnd: size))
            case .failure(let error) where error.kind == .request:
                let window = min(configuration.extentsWindow, size - offset)
                known.append(ImageExtent(offset: offset, length: window, isZero: false))
            case .failure:
                break
            }
            return takeWaitersLocked()
        }
        wake.forEach { $0() }
    }

    /// A lane finished `item`; `bytes` of it were done (less only past a pipe's end).
    func complete(_ item: WorkItem, bytes: UInt64, zeroed: UInt64, skipped: UInt64) {
        let wake = lock.withLock { () -> [@Sendable () -> Void] in
            clearOutstanding(item)
            progress.bytesDone += bytes
            progress.bytesZeroed += zeroed
            progress.bytesSkipped += skipped
            if item.kind == .copy { progress.bytesCopied += bytes }
            return isFinishedLocked ? takeWaitersLocked() : []
        }
        wake.forEach { $0() }
    }

    /// Ranges a lane did not finish, to be handed out again first.
    func giveBack(_ items: [WorkItem]) {
        guard !items.isEmpty else { return }
        let wake = lock.withLock { () -> [@Sendable () -> Void] in
            items.forEach(clearOutstanding)
            returned.append(contentsOf: items.sorted { $0.offset < $1.offset })
            return takeWaitersLocked() + takeIdleWaitersLocked()
        }
        wake.forEach { $0() }
    }

    /// Items that were completed but whose writes may not have reached storage (their
    /// destination connection broke before a FLUSH covered them): they no longer count as
    /// done and are handed out again first.
    func reopen(_ items: [CompletedWork]) {
        guard !items.isEmpty else { return }
        let wake = lock.withLock { () -> [@Sendable () -> Void] in
            for done in items {
                progress.bytesDone -= done.bytes
                progress.bytesZeroed -= done.zeroed
                progress.bytesSkipped -= done.skipped
            }
            returned.append(contentsOf: items.map(\.item).sorted { $0.offset < $1.offset })
            return takeWaitersLocked() + takeIdleWaitersLocked()
        }
        wake.forEach { $0() }
    }

    /// A pipe source ended at `offset`: nothing past it exists.
    func endOfStream(at offset: UInt64) {
        lock.withLock {
            if size == nil || offset < size! { size = offset }
        }
    }

    /// Whether every range was handed out and completed.
    var isFinished: Bool { lock.withLock { isFinishedLocked } }

    private var isFinishedLocked: Bool {
        guard let size else { return false }
        return cursor >= size && returned.isEmpty && outstandingCount == 0
    }

    /// The offset below which every byte is done: what a destination that was cut off
    /// holds for sure. Items are handed out in offset order, so nothing below the cursor
    /// is missing except what is outstanding or was given back.
    var completedPrefix: UInt64 {
        lock.withLock {
            var prefix = cursor
            if let size { prefix = min(prefix, size) }
            if let first = returned.min(by: { $0.offset < $1.offset }) { prefix = min(prefix, first.offset) }
            if let lowest = outstanding.keys.min() { prefix = min(prefix, lowest) }
            return prefix
        }
    }

    private func takeWaitersLocked() -> [@Sendable () -> Void] {
        defer { waiters = [] }
        return waiters
    }

    /// The copy is over: drops every waiter. They hold their lanes, and lanes hold the
    /// planner, so keeping them would keep every lane (and its buffers) alive.
    func forgetWaiters() {
        lock.withLock {
            waiters = []
            idleWaiters = []
        }
    }

    private func takeIdleWaitersLocked() -> [@Sendable () -> Void] {
        defer { idleWaiters = [] }
        return idleWaiters
    }
}
