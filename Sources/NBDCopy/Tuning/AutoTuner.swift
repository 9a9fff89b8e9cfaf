import Telemetry
/// Chooses the lane count (`-C auto`) and the request size (`--request-size auto`) from
/// the aggregate completion rate, as a plain value: measurements in, decisions out. It
/// reads no clock; the time comes with each measurement.
///
/// It starts with a first look: after two ticks at the starting size, a lane service time
/// of 0.6 ms or more (`ServerShape`) means each request has a cost of its own, and the
/// size goes straight up three rungs (to eight times the size); one of 1.5 ms or more, on
/// two ticks in a row from the second (or 2 ms on one), goes at once to the largest size a
/// fit may choose. Two ticks there fit the server's fixed cost per request and
/// per-connection rate, and the size jumps to the one that spends a tenth of each request's
/// time on the fixed cost. On one whose rate did not rise the step is taken back. Where
/// the server shares this machine's cores (`sharedCores`) the first look instead cuts lanes
/// to one a core, with the size a rung up on a light server and two where requests have a
/// cost of their own short of 1.5 ms: one probe of fewer lanes; given back against the
/// first look's two early ticks, it is judged again against a full window at the lanes
/// given back. On a light server across the network the first look does nothing. No size
/// step ever goes past what a lane moves in 0.5 s (`longestRequestTime`).
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
/// - where the first look found a fixed cost per request, a lane step doubles the lanes
///   (`laneStepUp`): they pay nearly in proportion there. One that pays `laneLeap` (15%)
///   is measured again on a fresh window before the next doubling, which it is the
///   baseline of; one that pays less is taken back, and half as many are tried from a
///   fresh window when it paid `gain` at least;
/// - when the first lane added did not help, no lane ever did, and there are several,
///   one lane fewer is tried, and another while the rate does not fall by more than
///   `fewerTolerance` (3%): on a light server a small machine's cores, not the server,
///   are the limit, and lanes beyond them only cost;
/// - on a light server (no fixed cost found) a size step that lost is tried once more,
///   from a fresh window of the size before it, once per size: its gain there is smaller
///   than two windows of one setting differ by on a busy machine;
/// - when neither kind helps, hold. While holding, a rate that moves by more than
///   `markedChange` (20%) in two windows in a row starts the climb again, which holds on
///   more lanes than it started with only once one fewer was tried; otherwise one probe
///   every `probeInterval` (30 s) checks that the setting is still the best: a larger
///   size, a lane more and a lane fewer in turn.
///
/// Lanes never pass `maximumLanes` (the endpoints' multi-conn limit and
/// `--max-connections`). A user's `+` or `-` makes lanes manual until `resumeLanes`; the
/// request size goes on being tuned. Ticks while paused, while a lane being probed is still
/// connecting, and for `settle` after any change are not measured.
struct AutoTuner: Sendable {

    enum Dimension: Sendable, Equatable {
        case lanes, requestSize
    }

    struct Probe: Sendable {
        var dimension: Dimension
        /// The rate before the step.
        var baseline: Double
        var startedAt: Duration
        /// For lanes: the probed lane has opened.
        var applied: Bool
        /// For the request size: how many rungs the step went up.
        var rungs = 1
        /// For lanes: how many lanes the step added (or, with `fewer`, dropped).
        var laneStep = 1
        /// For lanes: the step was one lane fewer.
        var fewer = false
        var kind = Kind.step

        enum Kind: Sendable, Equatable {
            /// One rung, or a lane.
            case step
            /// Two rungs, after a doubling that paid almost in proportion.
            case leap
            /// The first look's step, from this service time at the size before; decisive:
            /// taken from one tick, straight to the largest size a fit may choose.
            case firstLook(requestSize: UInt64, serviceTime: Duration, decisive: Bool)
            /// The size the first look's fit chose.
            case fitted
            /// The probe every `probeInterval` while holding: a step (a size up, a lane more
            /// or fewer) that checks the setting; kept or taken back, it holds again, with
            /// no follow-up.
            case periodic
            /// The first look's cut to one lane a core on shared cores (`cutToCores`),
            /// with the rungs the size went up with it.
            case coresCut(rungs: Int)
            /// One lane fewer than a climb started again by a marked change ended with, when
            /// it added lanes (`NextWindow.checkLanesAddedSinceChange`).
            case changeCheck

            var isDecisiveLook: Bool {
                if case .firstLook(_, _, let decisive) = self { return decisive }
                return false
            }

            var isFirstLook: Bool {
                if case .firstLook = self { return true }
                return false
            }

            var isCoresCut: Bool {
                if case .coresCut = self { return true }
                return false
            }

            /// A probe of fewer lanes after which no further lane is dropped.
            var endsTheFewerChain: Bool { isCoresCut || self == .changeCheck || self == .periodic }
        }

        /// Several lanes were added at once (a doubling, or half of one).
        var addsSeveralLanes: Bool { dimension == .lanes && laneStep > 1 && !fewer }

        /// Whether a clear gain may keep the probe before its window is stable. Not for
        /// several lanes at once: their gain on a machine near its limit is close to what
        /// they must pay (`laneLeap`), and an early window may flatter them. Nor for any
        /// lane step on a server without a cost per request (`perRequestCostFound` false):
        /// there a lane gains a few percent at most, and a window read early gains or loses
        /// 10% by chance (null on 2 cores kept a fifth lane for +16% read after 0.3 s, and
        /// held at 5 lanes where 2 copy 15% faster). A stable window costs about a second.
        func mayBeKeptEarly(perRequestCostFound: Bool) -> Bool {
            dimension == .requestSize || (perRequestCostFound && !addsSeveralLanes && !fewer)
        }

        /// The smallest rise that keeps the probe.
        func wanted(_ configuration: Configuration) -> Double {
            // A decisive look's baseline is one tick, noisy: its step is kept only for a
            // gain that no noise makes (a serialized server's is +100% and more).
            if kind == .leap || kind.isDecisiveLook { return configuration.leap }
            return addsSeveralLanes ? configuration.laneLeap : configuration.gain
        }
    }

    enum Phase: Sendable {
        case measuring
        case probing(Probe)
        /// `reference` is the mean of the `windows` measured since holding began: a steadier
        /// baseline for the next probe than the last window alone.
        case holding(reference: Double, windows: Int, since: Duration, changedWindows: Int)
    }

    // The state below is written only by the tuner's own files (AutoTuner+*.swift): it is
    // internal because Swift has no access level for a group of files, not for others.
    let configuration: Configuration
    var phase = Phase.measuring
    var window = RateWindow()
    /// Nil until the first measurement, which only starts the clock: what came before it
    /// (lanes connecting, pipelines filling) is no setting's rate.
    var settleUntil: Duration?
    /// The lane count the tuner expects.
    var lanes: Int
    var sizeIndex = 0
    var laneMode: LaneMode
    /// Kinds of step that did not help since the last one that did.
    var settled: Set<Dimension> = []
    /// The step the last periodic probe took, so they take turns.
    var lastPeriodic = PeriodicStep.fewerLanes
    var lastDecision: TuningDecision?
    /// How long the work in flight takes to complete at the latest tick's rate.
    var turnover: Duration = .zero
    /// The last request-size step paid at least `leap`: the next one skips a rung.
    var leapsPay = false
    /// What the next window of the setting now is for, once a probe ended with it: at most
    /// one thing at a time, as every probe's end sets it afresh.
    enum NextWindow: Sendable {
        /// A lane added was taken back, and one lane fewer is tried from this window: the
        /// rate before the lane was added may have been read early or on a faster moment,
        /// and one fewer is kept only within 3% of it.
        case fewerLanes
        /// The cut to one lane a core was given back against the first look's two early
        /// ticks (`givenBack`); this window, a long one at the lanes given back, judges it
        /// again (`recheckCut`).
        case recheckCut(GivenBackCut)
        /// A climb started again by a marked change added lanes, each judged against a rate
        /// read while the machine was changing: one read in a dip makes any step look good
        /// as it recovers (null on 2 cores kept a third lane for +21% against a window 35%
        /// down, and held there, 10 to 15% slower than on 2). Before holding, one lane
        /// fewer is tried from this window, kept within `fewerTolerance`.
        case checkLanesAddedSinceChange
        /// A size step on a light server was taken back: it is tried again from this window.
        case retrySizeStep
        /// The setting is measured again before the climb goes on, `preferring` one kind
        /// of step: a lane (or the first look's step, the fitted size, the periodic probe's
        /// step) kept on a noisy window read early (`probeIsClear`), several lanes kept at
        /// once, or several taken back (the rate before them is old by then). The words say
        /// why, if anything is to be said.
        case climbAgain(reason: String?, preferring: Dimension)
    }

    var nextWindow: NextWindow?
    /// The first look is still to come.
    var firstLookPending = true
    /// Ticks in a row, before the first look, whose service time was decisive.
    var decisiveTicks = 0
    /// A decisive look's step was taken back: there is no second one, and the first look
    /// is to come again.
    var decisiveLookTakenBack = false
    /// A lane's share of the rate measured last (the first look's or the last window's):
    /// no size step goes past what it moves in `longestRequestTime`. Nil before either.
    var laneBytesPerSecond: Double?
    /// The first look found a fixed cost per request: every size may be tried.
    var perRequestCostFound = false
    /// A lane added was kept once: the starting count was not too many.
    var moreLanesPaid = false
    /// One lane fewer was tried and taken back: the count is not too many either.
    var fewerLanesTried = false
    /// The sizes a lost step to was tried again (`NextWindow.retrySizeStep`): once each.
    var retriedSizes: Set<Int> = []
    /// The smallest lane count a step up tried and took back since the climb began: a
    /// later lane step stops short of it.
    var laneCeiling: Int?
    /// The lane count when a marked change started the climb again, until it holds: lanes
    /// it added are checked (`NextWindow.checkLanesAddedSinceChange`).
    var lanesBeforeChange: Int?

    /// The window under way decides a lane count down: one lane fewer, or the count that
    /// one fewer starts from. Their gain is small by nature, so they are read on longer
    /// windows (`fewerWindow`).
    var decidesLaneCountDown: Bool {
        switch phase {
        case .measuring:
            switch nextWindow {
            case .fewerLanes, .recheckCut, .checkLanesAddedSinceChange: return true
            case .retrySizeStep, .climbAgain, nil: return false
            }
        case .probing(let probe): return probe.fewer
        case .holding: return false
        }
    }

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
        if let decision = decisiveFirstLook(measurement) { return [decision] }
        guard now >= settleUntil else { return [] }
        window.add(bytesPerSecond: measurement.bytesPerSecond, over: measurement.tick)
        if firstLookPending, case .measuring = phase, window.samples.count >= configuration.firstLookSamples {
            firstLookPending = false
            let decisions = firstLook(now: now)
            if !decisions.isEmpty { return decisions }
        }
        let stable = window.isStable(decidesLaneCountDown ? configuration.fewerWindow : configuration.window)
        guard stable || probeIsClear || firstLookStepIsMeasured else { return [] }
        let rate = window.bytesPerSecond
        laneBytesPerSecond = rate / Double(lanes)
        // Read early, but as steady as a stable window: as good a baseline as one.
        let steady = stable || window.relativeError <= configuration.window.stableError
        window = RateWindow()
        switch phase {
        case .measuring:
            let next = nextWindow
            nextWindow = nil
            switch next {
            case .recheckCut(let cut):
                if let decisions = recheckCut(cut, against: rate, now: now) { return decisions }
            case .retrySizeStep:
                if canStep(.requestSize) {
                    return [step(.requestSize, baseline: rate, now: now, prefix: "once more, from a fresh window", leaping: false)]
                }
            case .fewerLanes:
                if canDropLane { return [stepFewer(1, baseline: rate, now: now, prefix: nil)] }
            case .checkLanesAddedSinceChange:
                if canDropLane {
                    return [stepFewer(1, baseline: rate, now: now, prefix: "lanes were added while the rate was changing",
                                      kind: .changeCheck)]
                }
            case .climbAgain(let reason, let preferred):
                return climb(from: rate, now: now, prefix: reason, preferring: preferred)
            case nil:
                break
            }
            return climb(from: rate, now: now, prefix: nil)
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
        nextWindow = nil
        if case .probing(let probe) = phase, probe.dimension == .lanes { phase = .measuring }
        restartWindow(now)
        return [decide(.manual, lanes: lanes, reason: "a lane was added or dropped by hand: lanes are manual")]
    }

    /// Lanes are tuned again, from the count open now.
    mutating func resumeLanes(now: Duration) -> [TuningDecision] {
        guard laneMode == .manual else { return [] }
        laneMode = .auto
        settled = []
        laneCeiling = nil
        nextWindow.forgetMeasuringAgain()
        phase = .measuring
        restartWindow(now)
        return [decide(.resume, lanes: lanes, reason: "lanes are tuned again from \(lanes)")]
    }

    mutating func restartWindow(_ now: Duration) {
        window = RateWindow()
        settleUntil = now + max(configuration.settle, min(turnover, configuration.longestSettle))
    }

    mutating func decide(_ action: TuningDecision.Action, lanes after: Int, measured: Double? = nil,
                                 reason: String) -> TuningDecision {
        let decision = TuningDecision(action: action, lanesBefore: lanes, lanesAfter: after, requestSizeBefore: requestSize,
                                      requestSizeAfter: requestSize, measuredBytesPerSecond: measured, reason: reason)
        lastDecision = decision
        return decision
    }
}

extension AutoTuner.NextWindow? {
    /// A lane count changed (a lane failed, a user resumed tuning): a setting to measure
    /// again is gone, and the window measures the new one anyway; the other plans stand.
    mutating func forgetMeasuringAgain() {
        if case .climbAgain = self { self = nil }
    }
}
