/// Head-of-line stall episodes of one connection: whether one is running, how many there
/// were, how long they lasted and how many requests they held up (DESIGN.md §4).
///
/// The caller evaluates the stall condition and reports it here. An episode starts only
/// when the caller allows it (the engine's periodic `evaluateStall`) and lasts while the
/// condition keeps holding, even when the oldest request changes: a backlog draining
/// behind one slow request is one episode, not one per request. It ends at the first
/// evaluation where the condition no longer holds. Episodes are timed from the
/// evaluation that saw them start to the one that saw them end.
struct StallEpisodes {
    /// Episodes started, including a running one.
    private(set) var count = 0
    /// Time of finished episodes.
    private var finishedNanoseconds: UInt64 = 0
    /// Requests held behind, summed over finished episodes.
    private var finishedHeldBehind = 0
    /// When the running episode started; nil when not stalled.
    private var runningSinceElapsedNanoseconds: UInt64?
    /// The most requests waiting behind the stalled one during the running episode.
    private var runningMostHeldBehind = 0

    /// Whether an episode is running.
    var isStalled: Bool { runningSinceElapsedNanoseconds != nil }

    /// Applies the stall condition seen at `elapsedNanoseconds`, with `heldBehind` requests
    /// waiting behind the oldest one; returns true when this starts a new episode.
    mutating func update(
        conditionHolds: Bool, heldBehind: Int, elapsedNanoseconds: UInt64, mayStart: Bool
    ) -> Bool {
        if let since = runningSinceElapsedNanoseconds {
            if conditionHolds {
                runningMostHeldBehind = max(runningMostHeldBehind, heldBehind)
            } else {
                finishedNanoseconds &+= elapsedNanoseconds >= since ? elapsedNanoseconds - since : 0
                finishedHeldBehind &+= runningMostHeldBehind
                runningSinceElapsedNanoseconds = nil
                runningMostHeldBehind = 0
            }
            return false
        }
        guard conditionHolds, mayStart else { return false }
        runningSinceElapsedNanoseconds = elapsedNanoseconds
        runningMostHeldBehind = heldBehind
        count += 1
        return true
    }

    /// Total stalled time up to `elapsedNanoseconds`, including the running episode.
    func stalledNanoseconds(atElapsedNanoseconds elapsedNanoseconds: UInt64) -> UInt64 {
        guard let since = runningSinceElapsedNanoseconds, elapsedNanoseconds > since else {
            return finishedNanoseconds
        }
        return finishedNanoseconds &+ (elapsedNanoseconds - since)
    }

    /// Requests held behind, summed over episodes, including the running one so far.
    var heldBehind: Int { finishedHeldBehind &+ runningMostHeldBehind }
}
