/// When a lane tries again to open a connection that broke (`--reconnect`): after 100 ms,
/// then doubling to at most 5 s between tries, until `limit` has passed since the break
/// with no success. The wait before a try is cut short so that the last one starts as
/// `limit` runs out: the user's whole duration is tried, and giving up comes only after
/// it (the last try may end a little later). A plain value: time comes in as arguments.
struct ReconnectBackoff: Sendable, Equatable {
    static let firstDelay = Duration.milliseconds(100)
    static let longestDelay = Duration.seconds(5)

    /// How long tries may go on after the break.
    let limit: Duration
    /// Time of the break, on the lane's clock.
    let brokeAt: ContinuousClock.Instant
    /// Tries made so far.
    private(set) var attempts = 0
    private var delay = Self.firstDelay

    init(limit: Duration, brokeAt: ContinuousClock.Instant) {
        self.limit = limit
        self.brokeAt = brokeAt
    }

    /// The wait before the next try, or nil once `limit` has passed since the break.
    mutating func nextDelay(now: ContinuousClock.Instant) -> Duration? {
        let deadline = brokeAt + limit
        guard now < deadline else { return nil }
        let wait = min(delay, deadline - now)
        attempts += 1
        delay = min(delay * 2, Self.longestDelay)
        return wait
    }

    /// How long tries have gone on since the break.
    func elapsed(now: ContinuousClock.Instant) -> Duration { now - brokeAt }
}
