import NIOCore

/// One source connection paired with one destination connection, copying what the
/// planner hands it. Lives on one event loop; nothing here takes a lock.
///
/// A work item is read from the source, split into data and zero segments, and written
/// to the destination; it counts as done when the destination acknowledged every segment.
/// Dropping drains (no new work, finish what is in flight, disconnect politely); a failed
/// connection gives every unfinished item back to the planner for other lanes.
final class Lane {
    enum State: Equatable {
        case active, draining, idle, closed, failed
    }

    /// An item being copied, and the destination requests it still waits for.
    private struct ActiveItem {
        var item: WorkItem
        var pendingWrites = 0
        var zeroedBytes: UInt64 = 0
        var skippedBytes: UInt64 = 0
        var doneBytes: UInt64
    }

    let id: Int
    let eventLoop: any EventLoop
    let source: any EndpointConnection
    let destination: any EndpointConnection
    let sourceStats: ConnectionStats
    let destinationStats: ConnectionStats
    private let planner: Planner
    private let settings: LaneSettings
    private let delegate: any LaneDelegate
    private let imageEnd: () -> UInt64?

    private(set) var state = State.active
    private var items: [Int: ActiveItem] = [:]
    private var nextItemID = 0
    private var inFlightBytes: UInt64 = 0
    private var pumping = false
    private var pumpAgain = false
    private var waitingForPlanner = false
    private var paused = false
    private var stallTimer: RepeatedTask?
    private lazy var zeroBuffer: ByteBuffer = {
        var buffer = ByteBufferAllocator().buffer(capacity: Int(settings.requestSize))
        buffer.writeRepeatingByte(0, count: Int(settings.requestSize))
        return buffer
    }()

    /// How often stall states are re-evaluated.
    static let stallCheckInterval = TimeAmount.milliseconds(20)

    init(id: Int, source: any EndpointConnection, destination: any EndpointConnection, planner: Planner,
         settings: LaneSettings, delegate: any LaneDelegate) {
        self.id = id
        self.eventLoop = source.eventLoop
        self.source = source
        self.destination = destination
        self.planner = planner
        self.settings = settings
        self.delegate = delegate
        self.imageEnd = { planner.imageSize }
        let now = NIODeadline.now()
        sourceStats = ConnectionStats(laneID: id, side: .source, stallThreshold: settings.stallThreshold, now: now)
        destinationStats = ConnectionStats(laneID: id, side: .destination, stallThreshold: settings.stallThreshold, now: now)
    }

    // MARK: Control (all on the event loop)

    func start(paused: Bool) {
        self.paused = paused
        sourceStats.state = .active
        destinationStats.state = .active
        let loopBound = NIOLoopBound(self, eventLoop: eventLoop)
        stallTimer = eventLoop.scheduleRepeatedTask(initialDelay: Self.stallCheckInterval, delay: Self.stallCheckInterval) { _ in
            loopBound.value.checkStalls()
        }
        pump()
    }

    func setPaused(_ paused: Bool) {
        self.paused = paused
        if !paused { pump() }
    }

    /// Stops taking work; closes once what is in flight has finished.
    func drain() {
        guard state == .active || state == .idle else { return }
        state = .draining
        sourceStats.state = .draining
        destinationStats.state = .draining
        closeIfDrained()
    }

    /// Fails at once: work goes back, connections are cut.
    func abort(reason: String) {
        fail(reason: reason, notify: false)
    }

    func snapshots(now: NIODeadline) -> [ConnectionSnapshot] {
        sourceStats.setQueued(0)
        return [sourceStats.snapshot(now: now), destinationStats.snapshot(now: now)]
    }

    // MARK: Pulling work

    private func pump() {
        guard !pumping else {
            pumpAgain = true
            return
        }
        pumping = true
        defer { pumping = false }
        repeat {
            pumpAgain = false
            pullWork()
        } while pumpAgain
        if state == .draining { closeIfDrained() }
    }

    private func pullWork() {
        // Wakes this lane on its event loop when the planner has news. Made per call, not
        // kept: a stored closure holding the lane would keep it alive forever.
        let loopBound = NIOLoopBound(self, eventLoop: eventLoop)
        let eventLoop = self.eventLoop
        let waiter: @Sendable () -> Void = { eventLoop.execute { loopBound.value.plannerWoke() } }
        while state == .active, !paused, !waitingForPlanner, items.count < settings.maximumRequests,
              inFlightBytes < settings.maximumBytes {
            let next = planner.next(waiter: waiter)
            switch next {
            case .work(let item):
                start(item)
            case .fetchExtents(let offset, let length):
                fetchExtents(offset: offset, length: length)
            case .wait:
                waitingForPlanner = true
            case .finished:
                if items.isEmpty {
                    state = .idle
                    delegate.laneBecameIdle(id)
                }
                return
            }
        }
    }

    private func plannerWoke() {
        waitingForPlanner = false
        pump()
    }

    private func fetchExtents(offset: UInt64, length: UInt32) {
        let token = sourceStats.requestSent(bytes: 0, now: .now())
        source.extents(offset: offset, length: length) { result in
            self.sourceStats.requestCompleted(token, succeeded: (try? result.get()) != nil, now: .now())
            if case .failure(let error) = result, error.kind == .connection {
                self.planner.extentsArrived(result, offset: offset)
                self.fail(reason: error.message, notify: true)
                return
            }
            self.planner.extentsArrived(result, offset: offset)
            self.pump()
        }
    }

    // MARK: Copying one item

    private func start(_ item: WorkItem) {
        let itemID = nextItemID
        nextItemID += 1
        items[itemID] = ActiveItem(item: item, doneBytes: item.length)
        inFlightBytes += item.bufferedBytes
        switch item.kind {
        case .copy:
            let token = sourceStats.requestSent(bytes: item.length, now: .now())
            source.read(offset: item.offset, length: UInt32(item.length)) { result in
                self.readCompleted(itemID, token: token, result)
            }
        case .zero:
            writeSegments([.zero(offset: item.offset, length: item.length)], of: itemID)
        }
    }

    private func readCompleted(_ itemID: Int, token: ConnectionStats.RequestToken, _ result: Result<[ReadPiece], EndpointError>) {
        sourceStats.requestCompleted(token, succeeded: (try? result.get()) != nil, now: .now())
        guard var active = items[itemID], state != .failed, state != .closed else { return }
        switch result {
        case .failure(let error):
            requestFailed(itemID, error)
        case .success(let pieces):
            let received = pieces.reduce(UInt64(0)) { total, piece in
                switch piece {
                case .data(_, let bytes): return total + UInt64(bytes.readableBytes)
                case .zero(_, let length): return total + UInt64(length)
                }
            }
            if received < active.item.length {
                guard settings.sourceIsStream else {
                    requestFailed(itemID, EndpointError(.request, "short read: \(received) of \(active.item.length) bytes at offset \(active.item.offset)"))
                    return
                }
                planner.endOfStream(at: active.item.offset + received)
                active.doneBytes = received
                items[itemID] = active
            }
            let scanGranularity = settings.destinationCanZero || settings.skipZeroes ? settings.sparseGranularity : 0
            writeSegments(ZeroScan.segments(of: pieces, granularity: scanGranularity), of: itemID)
        }
    }

    /// Sends each segment to the destination: data as WRITE, zero ranges as a zero request,
    /// nothing at all, or (for destinations that cannot zero) as written zero bytes.
    private func writeSegments(_ segments: [ZeroScan.Segment], of itemID: Int) {
        guard var active = items[itemID] else { return }
        var requests: [(offset: UInt64, length: UInt64, send: (@escaping (Result<Void, EndpointError>) -> Void) -> Void)] = []
        for segment in segments {
            switch segment {
            case .data(let offset, let pieces):
                requests.append((offset, segment.length, { self.destination.write(pieces, at: offset, completion: $0) }))
            case .zero(let offset, let length):
                if settings.skipZeroes {
                    active.skippedBytes += length
                } else if settings.destinationCanZero && isAligned(offset: offset, length: length) {
                    active.zeroedBytes += length
                    requests.append((offset, length, { self.destination.zero(offset: offset, length: UInt32(length), allocate: self.settings.allocate, completion: $0) }))
                } else {
                    active.zeroedBytes += length
                    var position = offset
                    while position < offset + length {
                        let count = min(offset + length - position, settings.requestSize)
                        let zeroes = zeroBuffer.getSlice(at: zeroBuffer.readerIndex, length: Int(count))!
                        let at = position
                        requests.append((at, count, { self.destination.write([zeroes], at: at, completion: $0) }))
                        position += count
                    }
                }
            }
        }
        active.pendingWrites = requests.count
        items[itemID] = active
        if requests.isEmpty {
            finish(itemID)
            return
        }
        for request in requests {
            let token = destinationStats.requestSent(bytes: request.length, now: .now())
            request.send { result in
                self.destinationStats.requestCompleted(token, succeeded: (try? result.get()) != nil, now: .now())
                self.writeCompleted(itemID, result)
            }
        }
    }

    private func isAligned(offset: UInt64, length: UInt64) -> Bool {
        let alignment = settings.destinationAlignment
        return offset % alignment == 0 && (length % alignment == 0 || offset + length == imageEnd())
    }

    private func writeCompleted(_ itemID: Int, _ result: Result<Void, EndpointError>) {
        guard var active = items[itemID], state != .failed, state != .closed else { return }
        if case .failure(let error) = result {
            requestFailed(itemID, error)
            return
        }
        active.pendingWrites -= 1
        items[itemID] = active
        if active.pendingWrites == 0 { finish(itemID) }
    }

    private func finish(_ itemID: Int) {
        guard let active = items.removeValue(forKey: itemID) else { return }
        inFlightBytes -= active.item.bufferedBytes
        planner.complete(active.item, bytes: active.doneBytes, zeroed: active.zeroedBytes, skipped: active.skippedBytes)
        pump()
    }

    // MARK: Failures

    private func requestFailed(_ itemID: Int, _ error: EndpointError) {
        guard error.kind == .request else {
            fail(reason: error.message, notify: true)
            return
        }
        guard var active = items.removeValue(forKey: itemID) else { return }
        inFlightBytes -= active.item.bufferedBytes
        active.item.failures += 1
        guard active.item.failures <= settings.retries else {
            planner.giveBack([active.item])
            delegate.laneHitFatalError(error.message)
            closeIfDrained()
            return
        }
        sourceStats.recordRetry()
        delegate.laneReported(.retry(offset: active.item.offset, length: active.item.length,
                                     attempt: active.item.failures, error: error.message))
        planner.giveBack([active.item])
        pump()
    }

    private func fail(reason: String, notify: Bool) {
        guard state != .failed && state != .closed else { return }
        state = .failed
        stallTimer?.cancel()
        for stats in [sourceStats, destinationStats] {
            stats.state = .failed
            stats.failureReason = reason
        }
        let unfinished = items.values.map(\.item)
        items = [:]
        inFlightBytes = 0
        planner.giveBack(unfinished)
        source.abort()
        destination.abort()
        if notify {
            delegate.laneFailed(id, reason: reason, final: snapshots(now: .now()))
        }
    }

    private func closeIfDrained() {
        guard state == .draining, items.isEmpty else { return }
        state = .closed
        stallTimer?.cancel()
        let closing = [source.close(), destination.close()]
        EventLoopFuture.andAllComplete(closing, on: eventLoop).assumeIsolated().whenComplete { _ in
            self.sourceStats.state = .closed
            self.destinationStats.state = .closed
            self.delegate.laneClosed(self.id, final: self.snapshots(now: .now()))
        }
    }

    // MARK: Stalls

    private func checkStalls() {
        let now = NIODeadline.now()
        for stats in [sourceStats, destinationStats] {
            if let stall = stats.evaluateStall(now: now) {
                delegate.laneReported(.stall(laneID: id, side: stats.side, oldestAge: stall.oldestAge, heldBehind: stall.heldBehind))
            }
        }
    }
}
