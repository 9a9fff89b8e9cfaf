import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Telemetry

/// What the copy is doing now, for the dashboard, `--stats-json` and the control socket.
extension CopyEngine {
    // MARK: Snapshots

    /// Copies every connection's figures off its event loop; cheap enough for 10 Hz.
    public func snapshot() async -> CopySnapshot {
        let (records, ended, isPaused, openLanes) = lock.withLock { (lanes, endedLanes, paused, lifecycle.openLaneCount) }
        let now = NIODeadline.now()
        var byLane = ended
        for (id, lane) in records {
            if let figures = try? await lane.eventLoop.submit({ lane.value.snapshots(now: now) }).get() {
                byLane[id] = figures
            }
        }
        let progress = planner.currentProgress
        let elapsed = ContinuousClock.now - startTime
        let connections = byLane.keys.sorted().flatMap { byLane[$0]! }
        // The copy's rate is what the destination connections acknowledge, so it is exactly
        // the sum of their rates (ranges skipped without a request count in progress only).
        let rate = connections.filter { $0.side == .destination }.reduce(0) { $0 + $1.bytesPerSecond }
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let average = seconds > 0 ? Double(progress.bytesDone) / seconds : 0
        let total = planner.imageSize
        var eta: Duration?
        if let total, rate > 0 {
            eta = .milliseconds(Int64(Double(total - min(total, progress.bytesDone)) / rate * 1000))
        }
        var snapshot = CopySnapshot(
            elapsed: elapsed, bytesTotal: total, bytesDone: progress.bytesDone,
            completedPrefix: planner.completedPrefix, bytesZeroed: progress.bytesZeroed,
            bytesSkipped: progress.bytesSkipped, bytesPerSecond: rate, averageBytesPerSecond: average, eta: eta,
            lanes: openLanes, maximumLanes: maximumLanes,
            laneLimitReason: laneLimitReason, paused: isPaused,
            connections: connections, tuning: lock.withLock { tuning.status })
        snapshot.destinationIsNBD = destination is NBDEndpoint
        judgement.withLockedValue { judgement in
            snapshot.eventLoopCPU = judgement.cpu.busiestShare()
            snapshot.bottleneck = judgement.tracker.observe(snapshot)
        }
        return snapshot
    }
}
