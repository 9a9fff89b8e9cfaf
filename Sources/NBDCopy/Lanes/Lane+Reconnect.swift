import NBD
import NIOCore
import Telemetry

/// `--reconnect`: a broken connection opened again with backoff, for as long as the
/// user asked, and what must be copied again when it was the destination.
extension Lane {
    /// With `--reconnect` (checkpoints kept), a destination connection that the server
    /// closes breaks the lane even when it is idle: the writes it acknowledged since the
    /// last checkpoint may be gone with the server, and no request of its own would notice
    /// before the final flush went to another connection and reported them durable.
    func watchForClose(of connection: any EndpointConnection) {
        guard settings.checkpoints != nil, let closed = connection.closeFuture else { return }
        closed.hop(to: eventLoop).assumeIsolated().whenComplete { _ in
            guard self.destination === connection, self.isRunning else { return }
            self.connectionBroke(.destination, EndpointError(.connection, "\(self.endpoints.destination.displayName): the server closed the connection"))
        }
    }

    func decideAfterBreak(_ side: ConnectionSide, _ error: EndpointError) {
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

    func stopReconnecting() {
        for side in Array(reconnects.keys) {
            reconnects[side] = nil
            reconnectTimers.removeValue(forKey: side)?.cancel()
            stats(side).state = .closed
        }
    }

    static func describe(_ duration: Duration) -> String {
        let seconds = duration.seconds
        return seconds >= 1 ? "\((seconds * 10).rounded() / 10) s" : "\(Int((seconds * 1000).rounded())) ms"
    }
}
