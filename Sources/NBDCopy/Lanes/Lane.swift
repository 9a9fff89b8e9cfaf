import NBD
import NIOCore
import Telemetry

/// One source connection paired with one destination connection, copying what the
/// planner hands it. Lives on one event loop; nothing here takes a lock.
///
/// A work item is read from the source, split into data and zero segments, and written
/// to the destination; it counts as done when the destination acknowledged every segment.
/// Dropping drains (no new work, finish what is in flight, disconnect politely); a failed
/// connection gives every unfinished item back to the planner for other lanes.
///
/// With `--reconnect`, a connection that breaks is opened again (`LaneSettings.reconnect`):
/// only the items that needed it go back, and when it was the destination, so does the
/// work it acknowledged since the last checkpoint FLUSH, which may never have reached
/// storage (`UnflushedWrites`).
final class Lane {
    enum State: Equatable {
        case active, draining, idle, closed, failed
    }

    /// An item being copied, and the destination requests it still waits for.
    private struct ActiveItem {
        var item: WorkItem
        /// Still waiting for the source's READ (a zero item never reads).
        var reading: Bool
        var pendingWrites = 0
        var zeroedBytes: UInt64 = 0
        var skippedBytes: UInt64 = 0
        var doneBytes: UInt64
    }

    let id: Int
    let eventLoop: any EventLoop
    /// nil while that side reconnects.
    private(set) var source: (any EndpointConnection)?
    private(set) var destination: (any EndpointConnection)?
    let sourceStats: ConnectionStats
    let destinationStats: ConnectionStats
    private let endpoints: LaneEndpoints
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
    private var reconnects: [ConnectionSide: ReconnectBackoff] = [:]
    private var reconnectTimers: [ConnectionSide: Scheduled<Void>] = [:]
    private var unflushed = UnflushedWrites()
    /// The copy is stopping: data that arrives from the source is not written any more.
    private var discardingReads = false
    private lazy var zeroBuffer: ByteBuffer = {
        var buffer = ByteBufferAllocator().buffer(capacity: Int(settings.requestSize))
        buffer.writeRepeatingByte(0, count: Int(settings.requestSize))
        return buffer
    }()

    /// How often stall states are re-evaluated.
    static let stallCheckInterval = TimeAmount.milliseconds(20)

    init(id: Int, source: any EndpointConnection, destination: any EndpointConnection, endpoints: LaneEndpoints,
         planner: Planner, settings: LaneSettings, delegate: any LaneDelegate) {
        self.id = id
        self.eventLoop = source.eventLoop
        self.source = source
        self.destination = destination
        self.endpoints = endpoints
        self.planner = planner
        self.settings = settings
        self.delegate = delegate
        self.imageEnd = { planner.imageSize }
        let now = NIODeadline.now()
        sourceStats = ConnectionStats(laneID: id, side: .source, stallThreshold: settings.stallThreshold,
                                      slowThreshold: settings.slowThreshold, now: now)
        destinationStats = ConnectionStats(laneID: id, side: .destination, stallThreshold: settings.stallThreshold,
                                           slowThreshold: settings.slowThreshold, now: now)
    }

    private func stats(_ side: ConnectionSide) -> ConnectionStats {
        side == .source ? sourceStats : destinationStats
    }

    private func connection(_ side: ConnectionSide) -> (any EndpointConnection)? {
        side == .source ? source : destination
    }

    private var isRunning: Bool { state == .active || state == .idle }

    // MARK: Control (all on the event loop)

    func start(paused: Bool) {
        self.paused = paused
        sourceStats.state = .active
        destinationStats.state = .active
        let loopBound = NIOLoopBound(self, eventLoop: eventLoop)
        stallTimer = eventLoop.scheduleRepeatedTask(initialDelay: Self.stallCheckInterval, delay: Self.stallCheckInterval) { _ in
            loopBound.value.checkStalls()
        }
        if let destination { watchForClose(of: destination) }
        pump()
    }

    func setPaused(_ paused: Bool) {
        self.paused = paused
        if !paused { pump() }
    }

    /// Stops taking work; closes once what is in flight has finished. A side that is
    /// reconnecting stops trying. `discardingReads` (the copy stops): reads still in flight
    /// are awaited but not written, so a stop does not wait for a second round of writes.
    func drain(discardingReads: Bool = false) {
        if discardingReads { self.discardingReads = true }
        guard isRunning else {
            if state == .draining { closeIfDrained() }
            return
        }
        state = .draining
        stopReconnecting()
        for side in [ConnectionSide.source, .destination] where connection(side) != nil {
            stats(side).state = .draining
        }
        closeIfDrained()
    }

    /// Cuts the lane at once (the copy is stopping and the drain took too long): work goes
    /// back, connections are cut, and the lane reports itself closed.
    func abort(reason: String) {
        guard state != .failed && state != .closed else { return }
        fail(reason: reason, notify: false)
        delegate.laneClosed(id, final: snapshots(now: .now()))
    }

    /// Sends a FLUSH on the destination connection: the final one or a checkpoint.
    func flushDestination(completion: @escaping (Result<Void, EndpointError>) -> Void) {
        guard let destination, state != .failed, state != .closed else {
            completion(.failure(EndpointError(.connection, "\(endpoints.destination.displayName): no open connection to flush on")))
            return
        }
        let token = destinationStats.requestSent(bytes: 0, now: .now())
        destination.flush { result in
            self.answered(token, on: .destination, result, .flush, offset: 0, length: 0)
            // A FLUSH that lost its connection says that what the connection acknowledged
            // may be lost: it breaks like any other request's (and reconnects).
            if case .failure(let error) = result, error.kind == .connection, self.destination === destination {
                self.connectionBroke(.destination, error)
            }
            completion(result)
        }
    }

    /// A checkpoint FLUSH of `generation` was acknowledged: what was completed before it is durable.
    func checkpointReached(_ generation: UInt64) {
        unflushed.checkpointReached(generation)
    }

    func snapshots(now: NIODeadline) -> [ConnectionSnapshot] {
        [sourceStats.snapshot(now: now), destinationStats.snapshot(now: now)]
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
        guard source != nil, destination != nil else { return }
        // Wakes this lane on its event loop when the planner has news. Made per call, not
        // kept: a stored closure holding the lane would keep it alive forever.
        let loopBound = NIOLoopBound(self, eventLoop: eventLoop)
        let eventLoop = self.eventLoop
        let waiter: @Sendable () -> Void = { eventLoop.execute { loopBound.value.plannerWoke() } }
        // Two requests whatever their size (when `-R` allows): with one, a server that
        // answers one request at a time would wait for the client between requests.
        while isRunning, !paused, !waitingForPlanner, items.count < settings.maximumRequests,
              inFlightBytes < settings.maximumBytes || items.count < 2 {
            switch planner.next(waiter: waiter) {
            case .work(let item):
                if state == .idle {
                    state = .active
                    delegate.laneBecameBusy(id)
                }
                start(item)
            case .fetchExtents(let offset, let length):
                fetchExtents(offset: offset, length: length)
            case .wait:
                waitingForPlanner = true
            case .finished:
                // The planner keeps the waiter and wakes this lane if work comes back.
                waitingForPlanner = true
                if items.isEmpty && state == .active {
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
        guard let source else { return }
        let token = sourceStats.requestSent(bytes: 0, now: .now())
        source.extents(offset: offset, length: length) { result in
            self.answered(token, on: .source, result, .blockStatus, offset: offset, length: UInt64(length))
            self.planner.extentsArrived(result, offset: offset)
            // A late failure from a connection that was already replaced says nothing new.
            if case .failure(let error) = result, error.kind != .request {
                if self.source === source { self.connectionBroke(.source, error) }
                return
            }
            self.pump()
        }
    }

    // MARK: Copying one item

    private func start(_ item: WorkItem) {
        let itemID = nextItemID
        nextItemID += 1
        items[itemID] = ActiveItem(item: item, reading: item.kind == .copy, doneBytes: item.length)
        inFlightBytes += item.bufferedBytes
        switch item.kind {
        case .copy:
            let token = sourceStats.requestSent(bytes: item.length, now: .now())
            source!.read(offset: item.offset, length: UInt32(item.length)) { result in
                self.answered(token, on: .source, result, .read, offset: item.offset, length: item.length)
                self.readCompleted(itemID, result)
            }
        case .zero:
            writeSegments([.zero(offset: item.offset, length: item.length)], of: itemID)
        }
    }

    private func readCompleted(_ itemID: Int, _ result: Result<[ReadPiece], EndpointError>) {
        guard var active = items[itemID] else { return }
        switch result {
        case .failure(let error):
            requestFailed(itemID, error, side: .source)
        case .success(let pieces):
            guard !discardingReads else {
                giveBack(itemID)
                closeIfDrained()
                return
            }
            active.reading = false
            items[itemID] = active
            let received = pieces.reduce(UInt64(0)) { total, piece in
                switch piece {
                case .data(_, let bytes): return total + UInt64(bytes.readableBytes)
                case .zero(_, let length): return total + UInt64(length)
                }
            }
            if received < active.item.length {
                guard settings.sourceIsStream else {
                    requestFailed(itemID, EndpointError(.request, "short read: \(received) of \(active.item.length) bytes at offset \(active.item.offset)"), side: .source)
                    return
                }
                planner.endOfStream(at: active.item.offset + received)
                active.doneBytes = received
                items[itemID] = active
            }
            // Holes in a reply start wherever the source's own block size puts them; a
            // destination with a larger block size must only see requests on its grid, so
            // even with scanning off, blocks of that size are judged whole.
            var scanGranularity = settings.destinationCanZero || settings.skipZeroes ? settings.sparseGranularity : 0
            if scanGranularity == 0 && settings.destinationAlignment > 1 { scanGranularity = settings.destinationAlignment }
            writeSegments(ZeroScan.segments(of: pieces, granularity: scanGranularity), of: itemID)
        }
    }

    /// Sends each segment to the destination: data as WRITE, zero ranges as a zero request,
    /// nothing at all, or (for destinations that cannot zero) as written zero bytes.
    private func writeSegments(_ segments: [ZeroScan.Segment], of itemID: Int) {
        guard var active = items[itemID] else { return }
        guard let destination else {
            // The destination is reconnecting: this item starts again from the beginning.
            giveBack(itemID)
            return
        }
        var requests: [(operation: RequestOperation, offset: UInt64, length: UInt64,
                        send: (@escaping (Result<Void, EndpointError>) -> Void) -> Void)] = []
        for segment in segments {
            switch segment {
            case .data(let offset, let pieces):
                requests.append((.write, offset, segment.length, { destination.write(pieces, at: offset, completion: $0) }))
            case .zero(let offset, let length):
                if settings.skipZeroes {
                    active.skippedBytes += length
                } else if settings.destinationCanZero && isAligned(offset: offset, length: length) {
                    active.zeroedBytes += length
                    requests.append((.zero, offset, length, { destination.zero(offset: offset, length: UInt32(length), allocate: self.settings.allocate, completion: $0) }))
                } else {
                    active.zeroedBytes += length
                    var position = offset
                    while position < offset + length {
                        let count = min(offset + length - position, settings.requestSize)
                        let zeroes = zeroBuffer.getSlice(at: zeroBuffer.readerIndex, length: Int(count))!
                        let at = position
                        requests.append((.write, at, count, { destination.write([zeroes], at: at, completion: $0) }))
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
                self.answered(token, on: .destination, result, request.operation, offset: request.offset, length: request.length)
                self.writeCompleted(itemID, result)
            }
        }
    }

    private func isAligned(offset: UInt64, length: UInt64) -> Bool {
        let alignment = settings.destinationAlignment
        return offset % alignment == 0 && (length % alignment == 0 || offset + length == imageEnd())
    }

    private func writeCompleted(_ itemID: Int, _ result: Result<Void, EndpointError>) {
        guard var active = items[itemID] else { return }
        if case .failure(let error) = result {
            requestFailed(itemID, error, side: .destination)
            return
        }
        active.pendingWrites -= 1
        items[itemID] = active
        if active.pendingWrites == 0 { finish(itemID) }
    }

    private func finish(_ itemID: Int) {
        guard let active = items.removeValue(forKey: itemID) else { return }
        inFlightBytes -= active.item.bufferedBytes
        let done = CompletedWork(item: active.item, bytes: active.doneBytes, zeroed: active.zeroedBytes, skipped: active.skippedBytes)
        if let checkpoints = settings.checkpoints {
            unflushed.record(done, generation: checkpoints.current)
        }
        planner.complete(active.item, bytes: done.bytes, zeroed: done.zeroed, skipped: done.skipped)
        pump()
    }

    /// The item goes back to the planner unfinished, with no failure counted.
    private func giveBack(_ itemID: Int) {
        guard let active = items.removeValue(forKey: itemID) else { return }
        inFlightBytes -= active.item.bufferedBytes
        planner.giveBack([active.item])
    }

    // MARK: Failures

    /// A request failed: retry what may pass (`--retries`), end the copy for what will not,
    /// and treat a lost connection as the connection's failure, not the request's.
    private func requestFailed(_ itemID: Int, _ error: EndpointError, side: ConnectionSide) {
        switch error.kind {
        case .connection:
            // This item goes back with the others that needed the connection.
            giveBack(itemID)
            connectionBroke(side, error)
            return
        case .fatal:
            giveBack(itemID)
            stopAfterFatalError(error.message)
            return
        case .request:
            break
        }
        guard var active = items.removeValue(forKey: itemID) else { return }
        inFlightBytes -= active.item.bufferedBytes
        active.item.failures += 1
        guard error.mayPassOnRetry, active.item.failures <= settings.retries else {
            planner.giveBack([active.item])
            stopAfterFatalError(error.message)
            return
        }
        stats(side).recordRetry()
        delegate.laneReported(.retry(laneID: id, side: side, offset: active.item.offset, length: active.item.length,
                                     attempt: active.item.failures, error: error.message))
        planner.giveBack([active.item])
        pump()
    }

    /// A request failed for good: the copy ends. The lane stops taking work now, not when
    /// the engine's order to stop arrives: that order is queued on this event loop, behind
    /// a `pullWork` loop whose requests may fail synchronously (a broken pipe), which would
    /// otherwise take the same range back and fail it again for ever.
    private func stopAfterFatalError(_ message: String) {
        delegate.laneHitFatalError(message)
        drain(discardingReads: true)
    }

    /// One side's connection is gone: the items that needed it go back now; then the lane
    /// reconnects that side (`--reconnect`) or fails, as the endpoint's diagnosis says.
    private func connectionBroke(_ side: ConnectionSide, _ error: EndpointError) {
        guard let broken = connection(side), isRunning || state == .draining else { return }
        if side == .source { source = nil } else { destination = nil }
        broken.abort()
        // Items waiting for this side cannot finish; the others may.
        let lost = items.filter { side == .source ? $0.value.reading : !$0.value.reading }.keys
        for itemID in lost { giveBack(itemID) }
        if side == .destination {
            planner.reopen(unflushed.takeAll())
            // Not idle any more: it must reconnect before it can take work or flush, and
            // the copy must not end on a final flush while it does.
            if state == .idle {
                state = .active
                delegate.laneBecameBusy(id)
            }
        }
        stats(side).state = .reconnecting
        let endpoint = endpoints.endpoint(side)
        let loopBound = NIOLoopBound(self, eventLoop: eventLoop)
        Task {
            let diagnosed = await endpoint.diagnose(error)
            loopBound.eventLoop.execute { loopBound.value.decideAfterBreak(side, diagnosed) }
        }
    }

    /// With `--reconnect` (checkpoints kept), a destination connection that the server
    /// closes breaks the lane even when it is idle: the writes it acknowledged since the
    /// last checkpoint may be gone with the server, and no request of its own would notice
    /// before the final flush went to another connection and reported them durable.
    private func watchForClose(of connection: any EndpointConnection) {
        guard settings.checkpoints != nil, let closed = connection.closeFuture else { return }
        closed.hop(to: eventLoop).assumeIsolated().whenComplete { _ in
            guard self.destination === connection, self.isRunning else { return }
            self.connectionBroke(.destination, EndpointError(.connection, "\(self.endpoints.destination.displayName): the server closed the connection"))
        }
    }

    private func decideAfterBreak(_ side: ConnectionSide, _ error: EndpointError) {
        guard isRunning else {
            fail(reason: error.message, notify: true)
            return
        }
        if error.kind == .fatal {
            delegate.laneHitFatalError(error.message)
            fail(reason: error.message, notify: true)
            return
        }
        guard let limit = settings.reconnect, endpoints.endpoint(side).canReconnect else {
            fail(reason: error.message, notify: true)
            return
        }
        let backoff = ReconnectBackoff(limit: limit, brokeAt: .now)
        reconnects[side] = backoff
        scheduleReconnect(side, lastError: error)
    }

    private func scheduleReconnect(_ side: ConnectionSide, lastError: EndpointError) {
        guard var backoff = reconnects[side] else { return }
        guard let delay = backoff.nextDelay(now: .now) else {
            reconnects[side] = nil
            let endpoint = endpoints.endpoint(side)
            fail(reason: "\(endpoint.displayName): could not reconnect: tried for \(Self.describe(backoff.elapsed(now: .now))) "
                 + "(--reconnect \(Self.describe(backoff.limit)), \(backoff.attempts) tries); last error: \(lastError.message)", notify: true)
            return
        }
        reconnects[side] = backoff
        stats(side).reconnectAttempt = backoff.attempts
        delegate.laneReported(.laneReconnecting(laneID: id, side: side, attempt: backoff.attempts, error: lastError.message))
        let loopBound = NIOLoopBound(self, eventLoop: eventLoop)
        reconnectTimers[side] = eventLoop.scheduleTask(in: .nanoseconds(Int64(delay.components.seconds) * 1_000_000_000
                                                                          + delay.components.attoseconds / 1_000_000_000)) {
            loopBound.value.attemptReconnect(side)
        }
    }

    private func attemptReconnect(_ side: ConnectionSide) {
        reconnectTimers[side] = nil
        guard reconnects[side] != nil, isRunning else { return }
        let endpoint = endpoints.endpoint(side)
        let loopBound = NIOLoopBound(self, eventLoop: eventLoop)
        let eventLoop = self.eventLoop
        Task {
            do {
                let connection = try await endpoint.connect(on: eventLoop)
                eventLoop.execute { loopBound.value.reconnected(side, connection.value) }
            } catch {
                let failure = error as? EndpointError ?? EndpointError(.connection, "\(endpoint.displayName): \(error)")
                eventLoop.execute { loopBound.value.reconnectFailed(side, failure) }
            }
        }
    }

    private func reconnected(_ side: ConnectionSide, _ connection: any EndpointConnection) {
        guard reconnects.removeValue(forKey: side) != nil, isRunning else {
            connection.abort()
            return
        }
        if side == .source { source = connection } else { destination = connection; watchForClose(of: connection) }
        stats(side).state = .active
        stats(side).reconnectAttempt = 0
        stats(side).reconnects += 1
        delegate.laneReported(.laneReconnected(laneID: id, side: side))
        pump()
    }

    private func reconnectFailed(_ side: ConnectionSide, _ error: EndpointError) {
        guard reconnects[side] != nil, isRunning else { return }
        if error.kind == .fatal {
            reconnects[side] = nil
            delegate.laneHitFatalError(error.message)
            fail(reason: error.message, notify: true)
            return
        }
        scheduleReconnect(side, lastError: error)
    }

    private func stopReconnecting() {
        for side in Array(reconnects.keys) {
            reconnects[side] = nil
            reconnectTimers.removeValue(forKey: side)?.cancel()
            stats(side).state = .closed
        }
    }

    private static func describe(_ duration: Duration) -> String {
        let seconds = duration.seconds
        return seconds >= 1 ? "\((seconds * 10).rounded() / 10) s" : "\(Int((seconds * 1000).rounded())) ms"
    }

    private func fail(reason: String, notify: Bool) {
        guard state != .failed && state != .closed else { return }
        state = .failed
        stallTimer?.cancel()
        stopReconnecting()
        for stats in [sourceStats, destinationStats] {
            stats.state = .failed
            stats.failureReason = reason
        }
        let unfinished = items.values.map(\.item)
        items = [:]
        inFlightBytes = 0
        planner.giveBack(unfinished)
        source?.abort()
        destination?.abort()
        if notify {
            delegate.laneFailed(id, reason: reason, final: snapshots(now: .now()))
        }
    }

    private func closeIfDrained() {
        guard state == .draining, items.isEmpty else { return }
        state = .closed
        stallTimer?.cancel()
        let closing = [source?.close(), destination?.close()].compactMap { $0 }
        EventLoopFuture.andAllComplete(closing, on: eventLoop).assumeIsolated().whenComplete { _ in
            self.sourceStats.state = .closed
            self.destinationStats.state = .closed
            self.delegate.laneClosed(self.id, final: self.snapshots(now: .now()))
        }
    }

    // MARK: Stalls and slow requests

    /// Records the answer to a request in its connection's figures; a slow request is an event.
    private func answered<Success>(_ token: ConnectionStats.RequestToken, on side: ConnectionSide, _ result: Result<Success, EndpointError>,
                                   _ operation: RequestOperation, offset: UInt64, length: UInt64) {
        let succeeded: Bool, errno: NBDErrno?
        switch result {
        case .success: (succeeded, errno) = (true, nil)
        case .failure(let error): (succeeded, errno) = (false, error.errno)
        }
        guard let latency = stats(side).requestCompleted(token, succeeded: succeeded, now: .now(),
                                                         operation: operation, errno: errno) else { return }
        delegate.laneReported(.slowRequest(laneID: id, side: side, operation: operation, offset: offset, length: length,
                                           latency: latency))
    }

    private func checkStalls() {
        let now = NIODeadline.now()
        for stats in [sourceStats, destinationStats] {
            if let stall = stats.evaluateStall(now: now) {
                delegate.laneReported(.stall(laneID: id, side: stats.side, oldestAge: stall.oldestAge, held: stall.held))
            }
        }
    }
}

/// Both endpoints of a copy, for a lane that must open a connection again.
struct LaneEndpoints: Sendable {
    let source: any CopyEndpoint
    let destination: any CopyEndpoint

    func endpoint(_ side: ConnectionSide) -> any CopyEndpoint {
        side == .source ? source : destination
    }
}
