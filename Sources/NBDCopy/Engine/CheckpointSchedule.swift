/// When the next checkpoint FLUSH is due (`--checkpoint`): after `every` bytes were done or
/// `interval` passed since the last one, whichever comes first, one at a time. A plain value.
struct CheckpointSchedule {
    private var lastBytesDone: UInt64 = 0
    private var lastTime = ContinuousClock.now
    private var inFlight = false

    mutating func reset(bytesDone: UInt64, now: ContinuousClock.Instant) {
        lastBytesDone = bytesDone
        lastTime = now
        inFlight = false
    }

    /// Whether a checkpoint should start now. Progress can go back (work copied again), so
    /// the byte count only counts forward from the last checkpoint.
    func isDue(bytesDone: UInt64, now: ContinuousClock.Instant, every bytes: UInt64, or interval: Duration) -> Bool {
        guard !inFlight else { return false }
        let written = bytesDone > lastBytesDone ? bytesDone - lastBytesDone : 0
        return written >= bytes || (written > 0 && now - lastTime >= interval)
    }

    mutating func begin() { inFlight = true }

    /// The checkpoint sent when `bytesDone` was reached ended; a failed one is tried again
    /// at the next check.
    mutating func end(succeeded: Bool, bytesDone: UInt64, now: ContinuousClock.Instant) {
        inFlight = false
        if succeeded { reset(bytesDone: bytesDone, now: now) }
    }
}
