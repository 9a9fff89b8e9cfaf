/// Chooses the lane count (`-C auto`) and the request size (`--request-size auto`) from
/// the aggregate completion rate, as a plain value: measurements in, decisions out. It
/// reads no clock; the time comes with each measurement.
///
/// The rule is a hill climb, one probe at a time:
/// - measure the current setting until the window is stable (`RateWindow`);
/// - probe one step up (one more lane, or the next request size) and measure again;
/// - keep the step when the rate rose by at least `gain` (5%), and try the next step of
///   the same kind; otherwise take it back, and try the other kind. A probe may be kept
///   before its window is stable when the gain is clear (it is never taken back early); a
///   lane kept that way on a noisy window is measured again, on a fresh one, before the
///   next probe uses it as a baseline;
/// - while a larger request size pays almost in proportion (at least `leap`, +50%, for a
///   doubling: per-request latency dominates), the next size step skips a rung. A leap is
///   kept only when it pays that much too; otherwise it is taken back and the rung it
///   skipped is tried on its own, so a peak between the two is not passed over;
/// - when neither kind helps, hold. While holding, a rate that moves by more than
///   `markedChange` (20%) in two windows in a row starts the climb again; otherwise one
///   probe every `probeInterval` (30 s) checks that the setting is still the best.
///
/// Lanes never pass `maximumLanes` (the endpoints' multi-conn limit and
/// `--max-connections`). A user's `+` or `-` makes lanes manual until `resumeLanes`; the
/// request size goes on being tuned. Ticks while paused, while a lane being probed is still
/// connecting, and for `settle` after any change are not measured.
struct AutoTuner: Sendable {
    struct Configuration: Sendable {
        var maximumLanes: Int
        var tunesLanes: Bool
        var initialLanes: Int
        /// The sizes to choose from; the first is where it starts. One size: not tuned.
        var requestSizes: [UInt64]
        /// The smallest rise in rate that keeps a step.
        var gain = 0.05
        /// A rise or fall, while holding, that means conditions changed.
        var markedChange = 0.2
        /// A probe whose gain exceeds `gain` by this much (and four standard errors) is kept
        /// before its window is stable: a doubling needs no long look.
        var clearMargin = 0.1
        /// A request-size step that raised the rate this much makes the next one skip a rung.
        var leap = 0.5
        /// Ticks this long after a change are not measured (pipelines refill), or longer:
        /// until the work in flight at the change has turned over, up to `longestSettle`.
        var settle: Duration = .milliseconds(200)
        var longestSettle: Duration = .seconds(2)
        /// While holding, at most one probe this often.
        var probeInterval: Duration = .seconds(30)
        /// A probed lane that has not opened after this long is given up.
        var laneOpenTimeout: Duration = .seconds(5)
        var window = RateWindow.Limits()
    }

    /// One tick's figures.
    struct Measurement: Sendable {
        /// Time since the copy started.
        var now: Duration
        /// How long the tick lasted.
        var tick: Duration
        /// Bytes completed per second over the tick.
        var bytesPerSecond: Double
        /// Lanes open now (not draining).
        var lanes: Int
        /// Bytes of copy work handed out and not completed: with a deep queue at a server
        /// that answers in order, a change shows only once this has turned over.
        var bytesInFlight: UInt64 = 0
        var paused = false
    }

    enum Dimension: Sendable, Equatable {
        case lanes, requestSize
    }

    private struct Probe: Sendable {
        var dimension: Dimension
        /// The rate before the step.
        var baseline: Double
        var startedAt: Duration
        /// For lanes: the probed lane has opened.
        var applied: Bool
        /// For the request size: how many rungs the step went up.
        var rungs = 1
    }

    private enum Phase: Sendable {
        case measuring
        case probing(Probe)
        /// `reference` is the mean of the `windows` measured since holding began: a steadier
        /// baseline for the next probe than the last window alone.
        case holding(reference: Double, windows: Int, since: Duration, changedWindows: Int)
    }

    let configuration: Configuration
    private var phase = Phase.measuring
    private var window = RateWindow()
    /// Nil until the first measurement, which only starts the clock: what came before it
    /// (lanes connecting, pipelines filling) is no setting's rate.
    private var settleUntil: Duration?
    /// The lane count the tuner expects.
    private(set) var lanes: Int
    private var sizeIndex = 0
    private(set) var laneMode: LaneMode
    /// Kinds of step that did not help since the last one that did.
    private var settled: Set<Dimension> = []
    /// The kind the last periodic probe tried, so they alternate.
    private var lastPeriodic: Dimension = .lanes
    private(set) var lastDecision: TuningDecision?
    /// How long the work in flight takes to complete at the latest tick's rate.
    private var turnover: Duration = .zero
    /// The last request-size step paid at least `leap`: the next one skips a rung.
    private var leapsPay = false
    /// A lane kept on a noisy window read early (`probeIsClear`): the climb goes on, lanes
    /// first, once a fresh window has measured the new count; these words say why.
    private var laneKeptEarly: String?

    init(_ configuration: Configuration) {
        self.configuration = configuration
        lanes = configuration.initialLanes
        laneMode = configuration.tunesLanes && configuration.maximumLanes > 1 ? .auto : .fixed
    }

    var requestSize: UInt64 { configuration.requestSizes[sizeIndex] }

    var tunesRequestSize: Bool { configuration.requestSizes.count > 1 }

    // MARK: Inputs

    /// One tick's figures; returns the decisions to carry out, in order.
    mutating func observe(_ measurement: Measurement) -> [TuningDecision] {
        let now = measurement.now
        if measurement.bytesPerSecond > 0 {
            // Clamped: a rate near zero must not overflow the conversion.
            let milliseconds = min(Double(measurement.bytesInFlight) / measurement.bytesPerSecond * 1000, 86_400_000)
            turnover = .milliseconds(Int64(milliseconds))
        }
        if measurement.paused {
            restartWindow(now)
            return []
        }
        guard let settleUntil else {
            lanes = measurement.lanes
            restartWindow(now)
            return []
        }
        if measurement.lanes != lanes {
            return laneCountDiffers(measurement)
        }
        if case .probing(var probe) = phase, !probe.applied {
            // The probed lane has just opened: measure from now.
            probe.applied = true
            phase = .probing(probe)
            restartWindow(now)
            return []
        }
        guard now >= settleUntil else { return [] }
        window.add(bytesPerSecond: measurement.bytesPerSecond, over: measurement.tick)
        let stable = window.isStable(configuration.window)
        guard stable || probeIsClear else { return [] }
        let rate = window.bytesPerSecond
        // Read early, but as steady as a stable window: as good a baseline as one.
        let steady = stable || window.relativeError <= configuration.window.stableError
        window = RateWindow()
        switch phase {
        case .measuring:
            let kept = laneKeptEarly
            laneKeptEarly = nil
            return climb(from: rate, now: now, prefix: kept, preferring: kept == nil ? nil : .lanes)
        case .probing(let probe):
            return concludeProbe(probe, measured: rate, now: now, early: !steady)
        case .holding(let reference, let windows, let since, let changedWindows):
            return hold(reference: reference, windows: windows, since: since, changedWindows: changedWindows,
                        measured: rate, now: now)
        }
    }

    /// A user added or dropped a lane: lanes are manual from now on.
    mutating func lanesSetByUser(now: Duration) -> [TuningDecision] {
        guard laneMode == .auto else { return [] }
        laneMode = .manual
        laneKeptEarly = nil
        if case .probing(let probe) = phase, probe.dimension == .lanes { phase = .measuring }
        restartWindow(now)
        return [decide(.manual, lanes: lanes, reason: "a lane was added or dropped by hand: lanes are manual")]
    }

    /// Lanes are tuned again, from the count open now.
    mutating func resumeLanes(now: Duration) -> [TuningDecision] {
        guard laneMode == .manual else { return [] }
        laneMode = .auto
        settled = []
        laneKeptEarly = nil
        phase = .measuring
        restartWindow(now)
        return [decide(.resume, lanes: lanes, reason: "lanes are tuned again from \(lanes)")]
    }

    /// The probe's window already exceeds its baseline by far more than the gain asked for
    /// (a leap's, for a leap) and its own noise: kept early. A loss is never decided early.
    private var probeIsClear: Bool {
        guard case .probing(let probe) = phase, probe.baseline > 0, window.samples.count >= 3 else { return false }
        let wanted = probe.dimension == .requestSize && probe.rungs > 1 ? configuration.leap : configuration.gain
        // Only a gain: the first ticks after a step can be slow for a while (a server
        // warming up to larger requests, a new connection), and a step taken back early
        // stays taken back until the next periodic probe, 30 s on.
        let excess = window.bytesPerSecond / probe.baseline - 1 - wanted
        return excess >= max(configuration.clearMargin, 4 * window.relativeError)
    }

    // MARK: Steps

    /// The open lanes are not what the tuner expects: a probed lane is still connecting (or
    /// never opened), or a lane failed or a user changed the count.
    private mutating func laneCountDiffers(_ measurement: Measurement) -> [TuningDecision] {
        if case .probing(let probe) = phase, probe.dimension == .lanes, !probe.applied, measurement.lanes + 1 == lanes {
            guard measurement.now - probe.startedAt >= configuration.laneOpenTimeout else { return [] }
            lanes = measurement.lanes
            settled.insert(.lanes)
            phase = .measuring
            restartWindow(measurement.now)
            return [decide(.hold, lanes: lanes, reason: "the lane added did not open; \(lanes) lane\(lanes == 1 ? "" : "s") stay")]
        }
        lanes = measurement.lanes
        if case .probing = phase { phase = .measuring }
        laneKeptEarly = nil
        restartWindow(measurement.now)
        return []
    }

    /// Takes the next step up after measuring `rate`, or holds.
    private mutating func climb(from rate: Double, now: Duration, prefix: String?, preferring preferred: Dimension? = nil) -> [TuningDecision] {
        let order: [Dimension] = preferred == .lanes ? [.lanes, .requestSize] : [.requestSize, .lanes]
        guard let dimension = order.first(where: { !settled.contains($0) && canStep($0) }) else {
            leapsPay = false
            phase = .holding(reference: rate, windows: 1, since: now, changedWindows: 0)
            let reason = [prefix, "holding at \(lanes) lane\(lanes == 1 ? "" : "s"), \(Self.size(requestSize)) requests, \(Self.rate(rate))"]
                .compactMap { $0 }.joined(separator: "; ")
            return [decide(.hold, lanes: lanes, measured: rate, reason: reason)]
        }
        return [step(dimension, baseline: rate, now: now, prefix: prefix)]
    }

    private func canStep(_ dimension: Dimension) -> Bool {
        switch dimension {
        case .lanes: return laneMode == .auto && lanes < configuration.maximumLanes
        case .requestSize: return sizeIndex + 1 < configuration.requestSizes.count
        }
    }

    private mutating func step(_ dimension: Dimension, baseline: Double, now: Duration, prefix: String?,
                               leaping: Bool? = nil) -> TuningDecision {
        let before = (lanes, requestSize)
        let decision: TuningDecision
        var rungs = 1
        switch dimension {
        case .lanes:
            lanes += 1
            decision = TuningDecision(action: .addLane, lanesBefore: before.0, lanesAfter: lanes, requestSizeBefore: before.1,
                                      requestSizeAfter: requestSize, baselineBytesPerSecond: baseline,
                                      reason: Self.joined(prefix, "adding lane \(lanes) to see if it raises \(Self.rate(baseline))"))
        case .requestSize:
            rungs = (leaping ?? leapsPay) && sizeIndex + 2 < configuration.requestSizes.count ? 2 : 1
            sizeIndex += rungs
            decision = TuningDecision(action: .growRequestSize, lanesBefore: before.0, lanesAfter: lanes, requestSizeBefore: before.1,
                                      requestSizeAfter: requestSize, baselineBytesPerSecond: baseline,
                                      reason: Self.joined(prefix, "trying \(Self.size(requestSize)) requests to see if they raise \(Self.rate(baseline))"))
        }
        phase = .probing(Probe(dimension: dimension, baseline: baseline, startedAt: now, applied: dimension == .requestSize,
                               rungs: rungs))
        restartWindow(now)
        lastDecision = decision
        return decision
    }

    private mutating func concludeProbe(_ probe: Probe, measured rate: Double, now: Duration, early: Bool) -> [TuningDecision] {
        let change = probe.baseline > 0 ? rate / probe.baseline - 1 : (rate > 0 ? 1 : 0)
        let what = probe.dimension == .lanes ? "lane \(lanes)" : "\(Self.size(requestSize)) requests"
        let comparison = "\(Self.rate(probe.baseline)) → \(Self.rate(rate)), \(Self.percent(change))"
        let leapt = probe.dimension == .requestSize && probe.rungs > 1
        let wanted = leapt ? configuration.leap : configuration.gain
        if change >= wanted {
            settled = []
            if probe.dimension == .requestSize { leapsPay = change >= configuration.leap }
            let prefix = "\(what) kept (\(comparison))"
            guard early, probe.dimension == .lanes else { return climb(from: rate, now: now, prefix: prefix, preferring: probe.dimension) }
            // A window read early because it looked clearly better flatters the setting:
            // as the next probe's baseline it would make that probe look worse than it is.
            // The setting stays; a fresh window (no settle: nothing changed) measures it.
            // Lanes only: a request-size climb is decided by large, lasting gains, and each
            // extra window would cost a short copy on a slow server much of its time.
            laneKeptEarly = prefix
            phase = .measuring
            return []
        }
        leapsPay = false
        if !leapt { settled.insert(probe.dimension) }
        let before = (lanes, requestSize)
        let action: TuningDecision.Action
        switch probe.dimension {
        case .lanes:
            lanes -= 1
            action = .dropLane
        case .requestSize:
            sizeIndex -= probe.rungs
            action = .shrinkRequestSize
        }
        let taken = TuningDecision(action: action, lanesBefore: before.0, lanesAfter: lanes, requestSizeBefore: before.1,
                                   requestSizeAfter: requestSize, baselineBytesPerSecond: probe.baseline,
                                   measuredBytesPerSecond: rate,
                                   reason: "\(what) taken back: under \(Self.percent(wanted)) more (\(comparison))")
        lastDecision = taken
        phase = .measuring
        restartWindow(now)
        // The rate before the probe still holds: go on from it without measuring again,
        // with the rung a leap skipped when it was one.
        var next = leapt ? [step(.requestSize, baseline: probe.baseline, now: now, prefix: nil, leaping: false)]
            : climb(from: probe.baseline, now: now, prefix: nil)
        if next.count == 1, next[0].action == .hold {
            // The take-back already says what happened; holding needs no second event.
            lastDecision = taken
            return [taken]
        }
        next.insert(taken, at: 0)
        return next
    }

    private mutating func hold(reference: Double, windows: Int, since: Duration, changedWindows: Int,
                               measured rate: Double, now: Duration) -> [TuningDecision] {
        let change = reference > 0 ? rate / reference - 1 : 0
        if abs(change) > configuration.markedChange {
            if changedWindows + 1 < 2 {
                phase = .holding(reference: reference, windows: windows, since: since, changedWindows: changedWindows + 1)
                return []
            }
            settled = []
            return climb(from: rate, now: now,
                         prefix: "the rate changed \(Self.percent(change)) (\(Self.rate(reference)) → \(Self.rate(rate))): probing again")
        }
        let mean = (reference * Double(windows) + rate) / Double(windows + 1)
        guard now - since >= configuration.probeInterval else {
            phase = .holding(reference: mean, windows: windows + 1, since: since, changedWindows: 0)
            return []
        }
        // One kind of step, alternating, unless only the other can move.
        let preferred: Dimension = lastPeriodic == .lanes ? .requestSize : .lanes
        let candidates = [preferred, preferred == .lanes ? .requestSize : .lanes].filter(canStep)
        guard let dimension = candidates.first else {
            phase = .holding(reference: mean, windows: windows + 1, since: now, changedWindows: 0)
            return []
        }
        lastPeriodic = dimension
        settled = [Dimension.lanes, .requestSize].filter { $0 != dimension }.reduce(into: []) { $0.insert($1) }
        return [step(dimension, baseline: mean, now: now,
                     prefix: "\(Int(configuration.probeInterval.seconds)) s since the last probe")]
    }

    private mutating func restartWindow(_ now: Duration) {
        window = RateWindow()
        settleUntil = now + max(configuration.settle, min(turnover, configuration.longestSettle))
    }

    private mutating func decide(_ action: TuningDecision.Action, lanes after: Int, measured: Double? = nil,
                                 reason: String) -> TuningDecision {
        let decision = TuningDecision(action: action, lanesBefore: lanes, lanesAfter: after, requestSizeBefore: requestSize,
                                      requestSizeAfter: requestSize, measuredBytesPerSecond: measured, reason: reason)
        lastDecision = decision
        return decision
    }

    // MARK: Words

    private static func joined(_ prefix: String?, _ text: String) -> String {
        prefix.map { "\($0); \(text)" } ?? text
    }

    static func rate(_ bytesPerSecond: Double) -> String {
        let megabytes = bytesPerSecond / 1e6
        return megabytes >= 100 ? "\(Int(megabytes.rounded())) MB/s" : "\((megabytes * 10).rounded() / 10) MB/s"
    }

    static func percent(_ fraction: Double) -> String {
        let value = Int((fraction * 100).rounded())
        return value > 0 ? "+\(value)%" : "\(value)%"
    }

    static func size(_ bytes: UInt64) -> String {
        if bytes >= 1 << 20, bytes % (1 << 20) == 0 { return "\(bytes >> 20)M" }
        if bytes >= 1 << 10, bytes % (1 << 10) == 0 { return "\(bytes >> 10)K" }
        return "\(bytes)"
    }
}
