import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Telemetry

/// The lifecycle's actions carried out, outside the lock: lanes started, drained or
/// aborted, the final flush, the end.
extension CopyEngine {
    // MARK: Performing the lifecycle's actions

    func perform(_ actions: [CopyLifecycle.Action]) {
        for action in actions {
            switch action {
            case .startLane(let id):
                let (lane, startPaused) = lock.withLock { (lanes[id], paused) }
                guard let lane else { continue }
                eventContinuation.yield(.laneAdded(laneID: id))
                lane.eventLoop.execute { lane.value.start(paused: startPaused) }
            case .discardLane(let id):
                forEachLane([id]) { $0.abort(reason: "the copy ended") }
            case .flush(let id):
                forEachLane([id]) { lane in
                    lane.flushDestination { result in self.finalFlushAnswered(result) }
                }
            case .drain(let ids):
                forEachLane(ids) { $0.drain() }
            case .cancel(let ids):
                forEachLane(ids) { $0.drain(discardingReads: true) }
            case .abort(let ids):
                forEachLane(ids) { $0.abort(reason: "stopped: its requests did not finish in time") }
            case .scheduleDrainTimeout(let timeout):
                group.next().scheduleTask(in: .nanoseconds(Self.nanoseconds(timeout))) {
                    self.perform(self.lock.withLock { self.lifecycle.drainTimedOut() })
                }
            case .closeEndpoints:
                lock.withLock {
                    checkpointTimer?.cancel()
                    tuning.timer?.cancel()
                }
                Task {
                    await source.close()
                    await destination.close()
                    perform(lock.withLock { lifecycle.endpointsClosed() })
                }
            case .complete(let outcome):
                planner.forgetWaiters()
                finished.succeed(outcome)
            }
        }
    }

    /// Runs `body` on each lane's event loop, in order (so later calls see earlier ones).
    func forEachLane(_ ids: [Int], _ body: @escaping @Sendable (Lane) -> Void) {
        let chosen = lock.withLock { ids.compactMap { lanes[$0] } }
        for lane in chosen {
            lane.eventLoop.execute { body(lane.value) }
        }
    }

    private func finalFlushAnswered(_ result: Result<Void, EndpointError>) {
        switch result {
        case .success:
            // Everything completed before the flush is durable: nothing needs copying again
            // if a connection breaks while the lanes close.
            forEachLane(lock.withLock { lifecycle.laneIDs }) { $0.checkpointReached(.max) }
            perform(lock.withLock { lifecycle.flushSucceeded() })
        case .failure(let error) where error.kind == .connection && settings.checkpoints != nil:
            // The lane reconnects and its unflushed work is copied again before the next try.
            perform(lock.withLock { lifecycle.flushConnectionLost(error.message) })
        case .failure(let error):
            perform(lock.withLock { lifecycle.flushFailed(error.message) })
        }
    }

    static func nanoseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000
    }
}
