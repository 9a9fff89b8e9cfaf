import NBD
import NIOCore
import Telemetry

/// How a lane copies: pulling work from the planner (and extents for it), then reading
/// each item, writing its data and zero segments, and finishing it or giving it back.
extension Lane {
    // MARK: Pulling work

    func pump() {
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

    func pullWork() {
        guard source != nil, destination != nil else { return }
        // Wakes this lane on its event loop when the planner has news. Made per call, not
        // kept: a stored closure holding the lane would keep it alive forever.
        let loopBound = NIOLoopBound(self, eventLoop: eventLoop)
        let eventLoop = self.eventLoop
        let waiter: @Sendable () -> Void = { eventLoop.execute { loopBound.value.plannerWoke() } }
        // Two requests whatever their size (when `-R` allows): with one, a server that
        // answers one request at a time would wait for the client between requests.
        while isRunning, !paused, !waitingForPlanner, items.count < settings.requests.current,
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

    func fetchExtents(offset: UInt64, length: UInt32) {
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

    func start(_ item: WorkItem) {
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

    func finish(_ itemID: Int) {
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
    func giveBack(_ itemID: Int) {
        guard let active = items.removeValue(forKey: itemID) else { return }
        inFlightBytes -= active.item.bufferedBytes
        planner.giveBack([active.item])
    }
}
