/// Chooses the lane count (`-C auto`) and the request size (`--request-size auto`) from
/// the aggregate completion rate, as a plain value: measurements in, decisions out. It
/// reads no clock; the time comes with each measurement.
///
/// It starts with a first look: after two ticks at the starting size, a lane service time
/// of a millisecond or more (`ServerShape`) means each request has a cost of its own, and
/// the size goes straight up three rungs (to eight times the size). Two ticks there fit
/// the server's fixed cost per request and per-connection rate, and the size jumps to the
/// one that spends a fifth of each request's time on the fixed cost. On a light server
/// the first look does nothing, and on one whose rate did not rise the step is taken back.
///
/// From there the rule is a hill climb, one probe at a time:
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
/// - when the first lane added did not help, no lane ever did, and there are several,
///   one lane fewer is tried (and another while that pays): on a light server a small
///   machine's cores, not the server, are the limit, and lanes beyond them only cost;
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
        /// Sizes above this are tried only once the first look found a fixed cost per
        /// request: on light servers they never paid for their probes.
        var ordinaryLargestSize: UInt64 = .max
        /// Once it found one, the fit and the climb go up to this.
        var largestFittedSize: UInt64 = .max
        /// A lane service time at least this long at the starting size: requests have a
        /// cost of their own, and the first look steps up at once.
        var slowServiceTime: Duration = .milliseconds(1)
        /// Ticks the first look, and the step it takes, are measured over.
        var firstLookSamples = 2
        /// Rungs the first look's step goes up.
        var firstLookRungs = 3
        /// The share of a request's service time the size fitted from the first look
        /// spends on bytes rather than on the fixed cost: 0.9 leaves the fixed cost 10%,
        /// the margin by which a setting counts as near the best. The fit's bandwidth comes
        /// from the first, warming requests and is low if anything, so it errs small.
        var efficiency = 0.9
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
        /// For lanes: the step was one lane fewer.
        var fewer = false
        var kind = Kind.step

        enum Kind: Sendable, Equatable {
            /// One rung, or a lane.
            case step
            /// Two rungs, after a doubling that paid almost in proportion.
            case leap
            /// The first look's step, from this service time at the size before.
            case firstLook(requestSize: UInt64, serviceTime: Duration)
            /// The size the first look's fit chose.
            case fitted
        }

        /// The smallest rise that keeps the probe.
        func wanted(_ configuration: Configuration) -> Double {
            kind == .leap ? configuration.leap : configuration.gain
        }
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
    /// The first look is still to come.
    private var firstLookPending = true
    /// The first look found a fixed cost per request: every size may be tried.
    private var perRequestCostFound = false
    /// A lane added was kept once: the starting count was not too many.
    private var moreLanesPaid = false
    /// One lane fewer was tried and taken back: the count is not too many either.
    private var fewerLanesTried = false

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
            // No change to wait out: the first tick's rate is the pipelines filling, and a
            // turnover read from it would be far too long.
            window = RateWindow()
            self.settleUntil = now + configuration.settle
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
        if firstLookPending, case .measuring = phase, window.samples.count >= configuration.firstLookSamples {
            firstLookPending = false
            if let decision = firstLook(now: now) { return [decision] }
        }
        let stable = window.isStable(configuration.window)
        guard stable || probeIsClear || firstLookStepIsMeasured else { return [] }
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
        let wanted = probe.wanted(configuration)
        // Only a gain: the first ticks after a step can be slow for a while (a server
        // warming up to larger requests, a new connection), and a step taken back early
        // stays taken back until the next periodic probe, 30 s on.
        let excess = window.bytesPerSecond / probe.baseline - 1 - wanted
        return excess >= max(configuration.clearMargin, 4 * window.relativeError)
    }

    /// The first look's step has its ticks: the fit needs no stable window, as its step
    /// is far larger than the noise.
    private var firstLookStepIsMeasured: Bool {
        guard case .probing(let probe) = phase, case .firstLook = probe.kind else { return false }
        return window.samples.count >= configuration.firstLookSamples
    }

    /// After the first ticks at the starting size: when a request costs a lane a
    /// millisecond or more, steps up `firstLookRungs` at once to fit the server's shape.
    private mutating func firstLook(now: Duration) -> TuningDecision? {
        let rate = window.bytesPerSecond
        guard canStep(.requestSize),
              let service = ServerShape.serviceTime(requestSize: requestSize, lanes: lanes, bytesPerSecond: rate),
              service >= configuration.slowServiceTime else { return nil }
        let kind = Probe.Kind.firstLook(requestSize: requestSize, serviceTime: service)
        return step(.requestSize, baseline: rate, now: now,
                    prefix: "a request takes a lane \(Self.milliseconds(service)) at \(Self.size(requestSize))",
                    rungs: configuration.firstLookRungs, kind: kind)
    }

    /// The first look's step paid: fit the server's shape and jump to the size it wants.
    private mutating func fit(from first: (requestSize: UInt64, serviceTime: Duration), measured rate: Double,
                              now: Duration, prefix: String) -> TuningDecision? {
        guard let service = ServerShape.serviceTime(requestSize: requestSize, lanes: lanes, bytesPerSecond: rate),
              let shape = ServerShape(first, (requestSize, service)) else { return nil }
        perRequestCostFound = true
        let target = shape.requestSize(among: configuration.requestSizes.filter { $0 <= configuration.largestFittedSize },
                                       efficiency: configuration.efficiency)
        guard let index = configuration.requestSizes.firstIndex(of: target), index > sizeIndex else { return nil }
        let perLane = shape.bytesPerSecond.isFinite ? ", \(Self.rate(shape.bytesPerSecond)) a lane" : ""
        return step(.requestSize, baseline: rate, now: now,
                    prefix: "\(prefix); the server spends \(Self.milliseconds(shape.perRequest)) per request\(perLane)",
                    rungs: index - sizeIndex, kind: .fitted)
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
        case .requestSize: return mayUse(sizeIndex + 1)
        }
    }

    /// Whether the size at `index` exists and may be tried now.
    private func mayUse(_ index: Int) -> Bool {
        let limit = perRequestCostFound ? configuration.largestFittedSize : configuration.ordinaryLargestSize
        return index < configuration.requestSizes.count && configuration.requestSizes[index] <= limit
    }

    /// A step up; `rungs` for a request-size step chosen by the first look or its fit
    /// (otherwise one, or two while leaps pay).
    private mutating func step(_ dimension: Dimension, baseline: Double, now: Duration, prefix: String?,
                               leaping: Bool? = nil, rungs chosen: Int? = nil, kind chosenKind: Probe.Kind? = nil) -> TuningDecision {
        firstLookPending = false
        let before = (lanes, requestSize)
        let decision: TuningDecision
        var rungs = 1
        var kind = Probe.Kind.step
        switch dimension {
        case .lanes:
            lanes += 1
            decision = TuningDecision(action: .addLane, lanesBefore: before.0, lanesAfter: lanes, requestSizeBefore: before.1,
                                      requestSizeAfter: requestSize, baselineBytesPerSecond: baseline,
                                      reason: Self.joined(prefix, "adding lane \(lanes) to see if it raises \(Self.rate(baseline))"))
        case .requestSize:
            if let chosen {
                rungs = max(1, (1...chosen).last { mayUse(sizeIndex + $0) } ?? 1)
                kind = chosenKind ?? .step
            } else if (leaping ?? leapsPay) && mayUse(sizeIndex + 2) {
                rungs = 2
                kind = .leap
            }
            sizeIndex += rungs
            decision = TuningDecision(action: .growRequestSize, lanesBefore: before.0, lanesAfter: lanes, requestSizeBefore: before.1,
                                      requestSizeAfter: requestSize, baselineBytesPerSecond: baseline,
                                      reason: Self.joined(prefix, "trying \(Self.size(requestSize)) requests to see if they raise \(Self.rate(baseline))"))
        }
        phase = .probing(Probe(dimension: dimension, baseline: baseline, startedAt: now, applied: dimension == .requestSize,
                               rungs: rungs, kind: kind))
        restartWindow(now)
        lastDecision = decision
        return decision
    }

    private mutating func concludeProbe(_ probe: Probe, measured rate: Double, now: Duration, early: Bool) -> [TuningDecision] {
        let change = probe.baseline > 0 ? rate / probe.baseline - 1 : (rate > 0 ? 1 : 0)
        let what = probe.dimension == .lanes ? "lane \(lanes)" : "\(Self.size(requestSize)) requests"
        let comparison = "\(Self.rate(probe.baseline)) → \(Self.rate(rate)), \(Self.percent(change))"
        let leapt = probe.dimension == .requestSize && probe.rungs > 1
        let wanted = probe.wanted(configuration)
        if change >= wanted {
            if probe.dimension == .lanes && !probe.fewer { moreLanesPaid = true }
            if probe.fewer {
                let prefix = "lane \(lanes + 1) dropped for good (\(comparison))"
                guard lanes > 1 else { return climb(from: rate, now: now, prefix: prefix, preferring: .requestSize) }
                return [stepFewer(baseline: rate, now: now, prefix: prefix)]
            }
            // A fitted size already spends at most a fifth of each request on the fixed
            // cost: a doubling could add about a tenth, the noise of one window here, and
            // its probe would cost a window. Lanes go on; sizes wait for a periodic probe.
            // Unless the jump paid half again: then the fit (two short, noisy windows)
            // underestimated the fixed cost, and sizes climb on.
            settled = probe.kind == .fitted && change < configuration.leap ? [.requestSize] : []
            // After a fitted jump the next size is not a doubling that pays in proportion:
            // the fit already chose where the fixed cost stops mattering.
            if probe.dimension == .requestSize { leapsPay = probe.kind != .fitted && change >= configuration.leap }
            let prefix = "\(what) kept (\(comparison))"
            if case .firstLook(let size, let service) = probe.kind {
                if let jump = fit(from: (size, service), measured: rate, now: now, prefix: prefix) { return [jump] }
            }
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
        if probe.fewer { return [givenBack(probe, measured: rate, now: now, comparison: comparison)] }
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
        if probe.dimension == .lanes && !moreLanesPaid && !fewerLanesTried && lanes > 1 && laneMode == .auto {
            return [taken, stepFewer(baseline: probe.baseline, now: now, prefix: nil)]
        }
        // The rate before the probe still holds: go on from it without measuring again,
        // with the rung a leap skipped when it was one.
        var next = probe.kind == .leap ? [step(.requestSize, baseline: probe.baseline, now: now, prefix: nil, leaping: false)]
            : climb(from: probe.baseline, now: now, prefix: nil)
        if next.count == 1, next[0].action == .hold {
            // The take-back already says what happened; holding needs no second event.
            lastDecision = taken
            return [taken]
        }
        next.insert(taken, at: 0)
        return next
    }

    /// One lane fewer, to see whether that raises `baseline`: the lane count the copy
    /// started with may be more than the machine can serve.
    private mutating func stepFewer(baseline: Double, now: Duration, prefix: String?) -> TuningDecision {
        let before = lanes
        lanes -= 1
        let decision = TuningDecision(action: .dropLane, lanesBefore: before, lanesAfter: lanes, requestSizeBefore: requestSize,
                                      requestSizeAfter: requestSize, baselineBytesPerSecond: baseline,
                                      reason: Self.joined(prefix, "dropping lane \(before) to see if fewer raise \(Self.rate(baseline))"))
        phase = .probing(Probe(dimension: .lanes, baseline: baseline, startedAt: now, applied: true, fewer: true))
        restartWindow(now)
        lastDecision = decision
        return decision
    }

    /// One lane fewer did not pay: the lane comes back, and the next decision waits for a
    /// window measured with it open (it takes a moment to connect).
    private mutating func givenBack(_ probe: Probe, measured rate: Double, now: Duration, comparison: String) -> TuningDecision {
        fewerLanesTried = true
        let before = lanes
        lanes += 1
        let decision = TuningDecision(action: .addLane, lanesBefore: before, lanesAfter: lanes, requestSizeBefore: requestSize,
                                      requestSizeAfter: requestSize, baselineBytesPerSecond: probe.baseline,
                                      measuredBytesPerSecond: rate,
                                      reason: "lane \(lanes) given back: \(before) lane\(before == 1 ? "" : "s") raised the rate under \(Self.percent(configuration.gain)) (\(comparison))")
        phase = .measuring
        restartWindow(now)
        lastDecision = decision
        return decision
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
}
