import NBD
import NIOCore
import Telemetry

/// What a lane does when a request or a connection fails: retry, give the work back,
/// fail the lane or stop the copy.
extension Lane {
    // MARK: Failures

    /// A request failed: retry what may pass (`--retries`), end the copy for what will not,
    /// and treat a lost connection as the connection's failure, not the request's.
    func requestFailed(_ itemID: Int, _ error: EndpointError, side: ConnectionSide) {
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
    func connectionBroke(_ side: ConnectionSide, _ error: EndpointError) {
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

    func fail(reason: String, notify: Bool) {
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

    func closeIfDrained() {
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
}
