import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Telemetry

// MARK: Auto-tuning (-C auto, --request-size auto)

/// The auto-tuner and what the engine keeps for it; protected by the engine's lock.
struct TuningState: Sendable {
    var tuner: AutoTuner
    var timer: RepeatedTask?
    /// The planner's copied bytes and the time at the last tick.
    var lastBytesCopied: UInt64 = 0
    var lastTick: Duration = .zero

    var status: TuningStatus {
        TuningStatus(laneMode: tuner.laneMode, requestSizeIsAuto: tuner.tunesRequestSize, requestSize: tuner.requestSize,
                     lastDecision: tuner.lastDecision?.reason)
    }
}

extension CopyEngine {
    /// How often the tuner gets a measurement.
    private static let tuningTick = TimeAmount.milliseconds(100)

    /// Requests a lane keeps in flight at most until the first look is over (`RequestLimit`).
    static let requestsDuringFirstLook = 32

    /// Starts the tuner's ticks, when there is something to tune.
    func startTuning() {
        let tunes = lock.withLock { tuning.tuner.laneMode == .auto || tuning.tuner.tunesRequestSize }
        guard tunes else { return }
        let timer = group.next().scheduleRepeatedTask(initialDelay: .zero, delay: Self.tuningTick) { _ in
            self.tuningTick()
        }
        lock.withLock { tuning.timer = timer }
    }

    var elapsed: Duration { ContinuousClock.now - startTime }

    private func tuningTick() {
        let progress = planner.currentProgress
        let handedOut = planner.allHandedOut
        let inFlight = planner.bytesInFlight
        let now = elapsed
        let decisions = lock.withLock { () -> [TuningDecision] in
            // Once every range is handed out, lanes run dry one by one: nothing to learn.
            guard lifecycle.phase == .running, !handedOut else {
                tuning.timer?.cancel()
                tuning.timer = nil
                return []
            }
            let tick = now - tuning.lastTick
            let bytes = progress.bytesCopied - min(progress.bytesCopied, tuning.lastBytesCopied)
            tuning.lastTick = now
            tuning.lastBytesCopied = progress.bytesCopied
            guard tick > .zero else { return [] }
            defer { if !tuning.tuner.firstLookPending { settings.requests.lift() } }
            return tuning.tuner.observe(AutoTuner.Measurement(
                now: now, tick: tick, bytesPerSecond: Double(bytes) / tick.seconds,
                lanes: lifecycle.openLaneCount, bytesInFlight: inFlight, paused: paused))
        }
        carryOut(decisions)
    }

    private func carryOut(_ decisions: [TuningDecision]) {
        for decision in decisions {
            eventContinuation.yield(.auto(decision))
            switch decision.action {
            case .addLane:
                // A step may add several lanes at once (doubling on a server with a fixed
                // cost per request), and take them all back.
                for _ in 0..<max(1, decision.lanesAfter - decision.lanesBefore) {
                    if case .open(let id) = lock.withLock({ lifecycle.reserveLane() }) {
                        Task { _ = try? await self.openLane(id) }
                    }
                }
            case .dropLane:
                for _ in 0..<max(1, decision.lanesBefore - decision.lanesAfter) {
                    _ = drainLane(id: nil)
                }
            case .growRequestSize, .shrinkRequestSize:
                planner.setRequestSize(decision.requestSizeAfter)
            case .hold, .manual, .resume:
                break
            }
        }
    }

    func lanesSetByUser() {
        let now = elapsed
        carryOut(lock.withLock { tuning.tuner.lanesSetByUser(now: now) })
    }

    /// Tunes lanes again after a user's `+` or `-` made them manual; false when lanes are
    /// not auto-tuned in this copy (`-C N`, or endpoints that allow one connection).
    @discardableResult
    public func resumeAutoLanes() -> Bool {
        let now = elapsed
        let (decisions, tunable) = lock.withLock { () -> ([TuningDecision], Bool) in
            (tuning.tuner.resumeLanes(now: now), tuning.tuner.laneMode != .fixed)
        }
        carryOut(decisions)
        return tunable
    }
}
