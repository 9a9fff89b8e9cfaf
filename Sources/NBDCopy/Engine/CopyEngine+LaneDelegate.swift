import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Telemetry

extension CopyEngine: LaneDelegate {
    /// A lane's last figures, kept after it ended: its totals stay, but it moves nothing now.
    static func ended(_ final: [ConnectionSnapshot]) -> [ConnectionSnapshot] {
        final.map { connection in
            var ended = connection
            ended.bytesPerSecond = 0
            return ended
        }
    }

    func laneBecameIdle(_ laneID: Int) {
        perform(lock.withLock { lifecycle.laneIdle(laneID) })
    }

    func laneBecameBusy(_ laneID: Int) {
        lock.withLock { lifecycle.laneBusy(laneID) }
    }

    func laneClosed(_ laneID: Int, final: [ConnectionSnapshot]) {
        let (actions, dropped) = lock.withLock { () -> ([CopyLifecycle.Action], Bool) in
            let dropped = lifecycle.phase == .running && lanes[laneID] != nil
            lanes[laneID] = nil
            endedLanes[laneID] = Self.ended(final)
            return (lifecycle.laneClosed(laneID), dropped)
        }
        if dropped { eventContinuation.yield(.laneDropped(laneID: laneID)) }
        perform(actions)
    }

    func laneFailed(_ laneID: Int, reason: String, final: [ConnectionSnapshot]) {
        let actions = lock.withLock { () -> [CopyLifecycle.Action] in
            lanes[laneID] = nil
            endedLanes[laneID] = Self.ended(final)
            return lifecycle.laneFailed(laneID, reason: reason)
        }
        eventContinuation.yield(.laneFailed(laneID: laneID, reason: reason))
        perform(actions)
    }

    func laneHitFatalError(_ message: String) {
        perform(lock.withLock { lifecycle.stop(.failed(message), drainTimeout: .seconds(5)) })
    }

    func laneReported(_ event: CopyEvent) {
        eventContinuation.yield(event)
    }
}
