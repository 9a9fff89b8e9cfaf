import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Telemetry

/// `--reconnect`: a FLUSH on every destination connection every `--checkpoint`, after
/// which the writes before it need not be copied again.
extension CopyEngine {
    // MARK: Checkpoints (--reconnect)

    /// With `--reconnect`, flushes the destination every `checkpointBytes` or
    /// `checkpointInterval`, so that what a broken destination connection forces us to copy
    /// again stays bounded.
    func startCheckpoints() {
        guard let generations = settings.checkpoints else { return }
        let timer = group.next().scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { _ in
            self.checkpointIfDue(generations)
        }
        lock.withLock {
            checkpoint.reset(bytesDone: 0, now: .now)
            checkpointTimer = timer
        }
    }

    private func checkpointIfDue(_ generations: CheckpointGeneration) {
        let bytesDone = planner.currentProgress.bytesDone
        let lane = lock.withLock { () -> NIOLoopBound<Lane>? in
            guard lifecycle.phase == .running,
                  checkpoint.isDue(bytesDone: bytesDone, now: .now, every: options.checkpointBytes, or: options.checkpointInterval),
                  let id = lifecycle.openLaneIDs.first, let lane = lanes[id] else { return nil }
            checkpoint.begin()
            return lane
        }
        guard let lane else { return }
        let generation = generations.advance()
        lane.eventLoop.execute {
            lane.value.flushDestination { result in
                let succeeded = (try? result.get()) != nil
                if succeeded {
                    self.forEachLane(self.lock.withLock { self.lifecycle.laneIDs }) { $0.checkpointReached(generation) }
                }
                self.lock.withLock { self.checkpoint.end(succeeded: succeeded, bytesDone: bytesDone, now: .now) }
            }
        }
    }
}
