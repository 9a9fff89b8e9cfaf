/// Head-of-line stalls and slow requests of one connection: the one place these are
/// decided (the definitions, with their reasons, are in `docs/telemetry.md`).
///
/// - A connection is in a **head-of-line stall** when it has requests in flight and none of
///   them has completed for longer than the stall threshold: it is blocked, and every
///   request behind the oldest one is **held**. The threshold is `--stall-threshold`, or
///   adaptive: 8 × the median gap between completions while requests were in flight, over
///   the last 5 to 10 s, and at least 100 ms. (Gaps, not round trips: a bandwidth cap or a
///   deep queue gives long round trips but steady completions, which is not a stall.) When
///   the oldest request is larger than usual, the adaptive threshold is at least 8 × the
///   time the connection's recent busy rate needs to move its bytes: under a bandwidth cap
///   one 4 MiB read after many small ones takes long, and nothing is blocked. An adaptive
///   threshold is known once the connection has given 8 answers.
///   An episode is timed from the last completion before it to the first one after it
///   (or to the moment nothing is in flight any more): the connection was blocked all
///   that while, even though it is only recognised once the threshold has passed.
/// - A **slow request** is one whose round trip, less the time its connection spent
///   stalled meanwhile, is above the slow threshold (`--slow-threshold`, or 8 × the
///   connection's recent median round trip and at least 100 ms), while the connection kept
///   completing others: at least 8 requests sent after it were answered before it. A
///   request that waited out a stall is held, not slow; one waiting its turn in a queue
///   (answered in order) is queueing, not slow. While a connection's queue fills up its
///   round trips grow faster than their median follows, so no request is judged slow before
///   the connection has answered twice as many requests as it has had in flight at most.
/// - Steady queueing (many requests, uniformly long round trips, steady completions) is
///   neither.
///
/// Time comes in as nanoseconds since the connection's figures started. The caller tells
/// of every request sent and answered, and calls `evaluate` periodically (the lane's
/// 20 ms tick), which is the only place a new episode starts.
struct StallDetector {
    /// Requests held behind the oldest during the current episode, and when it began.
    private struct Episode {
        var startedAtNanoseconds: UInt64
        var mostHeld: Int
    }

    /// When a stall was recognised: how long the oldest request had waited, and how many
    /// requests were held behind it.
    struct Started: Equatable {
        var oldestAgeNanoseconds: UInt64
        var held: Int
    }

    static let multiple: UInt64 = 8
    static let floor = Duration.milliseconds(100)
    /// Requests sent after a slow request that must be answered before it: the proof that
    /// the connection kept moving while it took long.
    static let minimumOvertaking = 8
    /// Answers a connection gives before an adaptive stall threshold is known: the first
    /// few come in a burst (a rate limiter's bucket, a server's cache) and say little of
    /// its pace.
    static let minimumAnswers = 8

    private(set) var stallThreshold: AdaptiveThreshold
    private(set) var slowThreshold: AdaptiveThreshold
    /// Gaps between completions while requests were in flight.
    private var gaps = LatencyWindow()
    /// Bytes answered per busy second, for requests larger than the gaps were measured on.
    private var busyRate = BusyRateWindow()
    /// Since when nothing has completed while requests were in flight: the later of the
    /// last completion and the send that ended an idle spell.
    private var quietSinceNanoseconds: UInt64 = 0
    private var running: Episode?
    /// Episodes started, including a running one.
    private(set) var episodes = 0
    private var finishedStalledNanoseconds: UInt64 = 0
    private var finishedHeld = 0
    /// Slow requests seen.
    private(set) var slowRequests = 0
    /// Answers so far, and the most requests in flight at once, for the warm-up.
    private var answers = 0
    private var mostInFlight = 0

    init(stallThreshold: Duration?, slowThreshold: Duration?) {
        self.stallThreshold = AdaptiveThreshold(explicit: stallThreshold, multiple: Self.multiple, floor: Self.floor)
        self.slowThreshold = AdaptiveThreshold(explicit: slowThreshold, multiple: Self.multiple, floor: Self.floor)
    }

    var isStalled: Bool { running != nil }

    /// The stall threshold in force, or nil while an adaptive one is not known yet.
    var stallThresholdInForce: Duration? {
        stallThreshold.explicitNanoseconds == nil && answers < Self.minimumAnswers ? nil : stallThreshold.duration
    }

    /// Requests held behind the oldest in the running episode (at most), 0 when not stalled.
    var held: Int { running?.mostHeld ?? 0 }

    /// Requests held, summed over episodes, including the running one.
    var totalHeld: Int { finishedHeld &+ held }

    /// Time spent stalled up to `elapsed`, including the running episode.
    func stalledNanoseconds(at elapsed: UInt64) -> UInt64 {
        guard let running, elapsed > running.startedAtNanoseconds else { return finishedStalledNanoseconds }
        return finishedStalledNanoseconds &+ (elapsed - running.startedAtNanoseconds)
    }

    // MARK: Inputs

    /// A request was sent at `elapsed`; `inFlightBefore` were in flight just before.
    mutating func requestSent(at elapsed: UInt64, inFlightBefore: Int) {
        mostInFlight = max(mostInFlight, inFlightBefore + 1)
        // An idle connection cannot be blocked: its quiet time starts with this request.
        if inFlightBefore == 0 { quietSinceNanoseconds = elapsed }
    }

    /// A request of `bytes` sent at `sentAt` (when the connection had been stalled
    /// `stalledAtSend` in all) was answered at `elapsed`. Returns whether it was a slow request. `latency` is
    /// the window of round trips the slow threshold follows; `overtaking` counts the
    /// requests sent after it that were answered before it (asked only of candidates).
    mutating func requestAnswered(at elapsed: UInt64, bytes: UInt64 = 0, sentAt: UInt64, stalledAtSend: UInt64,
                                  succeeded: Bool, latency: LatencyWindow, overtaking: () -> Int) -> Bool {
        let gap = elapsed > quietSinceNanoseconds ? elapsed - quietSinceNanoseconds : 0
        if gap > 0 {
            gaps.record(latencyNanoseconds: gap, elapsedNanoseconds: elapsed)
        }
        busyRate.record(bytes: succeeded ? bytes : 0, busyNanoseconds: gap, elapsedNanoseconds: elapsed)
        let stalledDuring = stalledNanoseconds(at: elapsed) &- stalledAtSend
        // Any answer ends a stall: the connection moves again.
        endEpisode(at: elapsed)
        quietSinceNanoseconds = elapsed
        answers += 1
        guard succeeded, answers > 2 * mostInFlight else { return false }
        let roundTrip = elapsed >= sentAt ? elapsed - sentAt : 0
        let unstalled = roundTrip > stalledDuring ? roundTrip - stalledDuring : 0
        guard unstalled > slowThreshold.lowestPossibleNanoseconds else { return false }
        slowThreshold.refresh(from: latency, elapsedNanoseconds: elapsed, force: false)
        guard unstalled > slowThreshold.nanoseconds, overtaking() >= Self.minimumOvertaking else { return false }
        slowRequests += 1
        return true
    }

    /// Re-evaluates at `elapsed` with `inFlight` requests, the oldest sent at
    /// `oldestSentAt` and of `oldestBytes`; returns a value when a new episode starts.
    mutating func evaluate(at elapsed: UInt64, inFlight: Int, oldestSentAt: UInt64?, oldestBytes: UInt64 = 0) -> Started? {
        guard inFlight > 0, let oldestSentAt else {
            endEpisode(at: elapsed)
            return nil
        }
        if var episode = running {
            episode.mostHeld = max(episode.mostHeld, inFlight - 1)
            running = episode
            return nil
        }
        guard stallThreshold.explicitNanoseconds != nil || answers >= Self.minimumAnswers else { return nil }
        let quiet = elapsed > quietSinceNanoseconds ? elapsed - quietSinceNanoseconds : 0
        // Cheap exit first: reading the adaptive threshold may walk the histogram.
        guard quiet > stallThreshold.lowestPossibleNanoseconds else { return nil }
        refresh(at: elapsed, force: false)
        guard quiet > stallThreshold.nanoseconds, quiet > timeToMoveNanoseconds(oldestBytes) else { return nil }
        running = Episode(startedAtNanoseconds: quietSinceNanoseconds, mostHeld: inFlight - 1)
        episodes += 1
        return Started(oldestAgeNanoseconds: elapsed > oldestSentAt ? elapsed - oldestSentAt : 0, held: inFlight - 1)
    }

    /// The adaptive threshold's lower bound for a request of `bytes`: 8 × the time the
    /// connection's recent busy rate needs to move them (0 with an explicit threshold).
    private func timeToMoveNanoseconds(_ bytes: UInt64) -> UInt64 {
        guard stallThreshold.explicitNanoseconds == nil, bytes > 0,
              let needed = busyRate.nanoseconds(toMove: bytes) else { return 0 }
        let (scaled, overflow) = needed.multipliedReportingOverflow(by: Self.multiple)
        return overflow ? .max : scaled
    }

    /// Brings the adaptive thresholds up to date (for snapshots, with `force`).
    mutating func refresh(at elapsed: UInt64, force: Bool, latency: LatencyWindow? = nil) {
        gaps.advance(elapsedNanoseconds: elapsed)
        busyRate.advance(elapsedNanoseconds: elapsed)
        stallThreshold.refresh(from: gaps, elapsedNanoseconds: elapsed, force: force)
        if let latency { slowThreshold.refresh(from: latency, elapsedNanoseconds: elapsed, force: force) }
    }

    private mutating func endEpisode(at elapsed: UInt64) {
        guard let episode = running else { return }
        finishedStalledNanoseconds &+= elapsed > episode.startedAtNanoseconds ? elapsed - episode.startedAtNanoseconds : 0
        finishedHeld &+= episode.mostHeld
        running = nil
    }
}
