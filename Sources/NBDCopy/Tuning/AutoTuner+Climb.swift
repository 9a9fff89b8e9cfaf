import Telemetry
/// The climb: steps up (and one lane fewer), and the probes that keep or take them back.
extension AutoTuner {
    /// The probe's window already exceeds its baseline by far more than the gain asked for
    /// (a leap's, for a leap) and its own noise: kept early. A loss is never decided early.
    var probeIsClear: Bool {
        guard case .probing(let probe) = phase, probe.mayBeKeptEarly(perRequestCostFound: perRequestCostFound), probe.baseline > 0,
              window.samples.count >= 3 else { return false }
        let wanted = probe.wanted(configuration)
        // Only a gain: the first ticks after a step can be slow for a while (a server
        // warming up to larger requests, a new connection), and a step taken back early
        // stays taken back until the next periodic probe, 30 s on.
        let excess = window.bytesPerSecond / probe.baseline - 1 - wanted
        return excess >= max(configuration.clearMargin, 4 * window.relativeError)
    }

    /// The open lanes are not what the tuner expects: a probed lane is still connecting (or
    /// never opened), or a lane failed or a user changed the count.
    mutating func laneCountDiffers(_ measurement: Measurement) -> [TuningDecision] {
        if case .probing(let probe) = phase, probe.dimension == .lanes, !probe.applied,
           measurement.lanes < lanes, measurement.lanes >= lanes - probe.laneStep {
            guard measurement.now - probe.startedAt >= configuration.laneOpenTimeout else { return [] }
            lanes = measurement.lanes
            settled.insert(.lanes)
            phase = .measuring
            restartWindow(measurement.now)
            let what = probe.laneStep == 1 ? "the lane added did not open" : "not every lane added opened"
            return [decide(.hold, lanes: lanes, reason: "\(what); \(lanes) lane\(lanes == 1 ? "" : "s") stay")]
        }
        lanes = measurement.lanes
        if case .probing = phase { phase = .measuring }
        nextWindow.forgetMeasuringAgain()
        restartWindow(measurement.now)
        return []
    }

    /// Takes the next step up after measuring `rate`, or holds.
    mutating func climb(from rate: Double, now: Duration, prefix: String?, preferring preferred: Dimension? = nil) -> [TuningDecision] {
        let order: [Dimension] = preferred == .lanes ? [.lanes, .requestSize] : [.requestSize, .lanes]
        guard let dimension = order.first(where: { !settled.contains($0) && canStep($0) }) else {
            if let before = lanesBeforeChange {
                lanesBeforeChange = nil
                if laneMode == .auto, lanes > before {
                    nextWindow = .checkLanesAddedSinceChange
                    phase = .measuring
                    return []
                }
            }
            leapsPay = false
            phase = .holding(reference: rate, windows: 1, since: now, changedWindows: 0)
            let reason = [prefix, "holding at \(lanes) lane\(lanes == 1 ? "" : "s"), \(Self.size(requestSize)) requests, \(Self.rate(rate))"]
                .compactMap { $0 }.joined(separator: "; ")
            return [decide(.hold, lanes: lanes, measured: rate, reason: reason)]
        }
        return [step(dimension, baseline: rate, now: now, prefix: prefix)]
    }

    /// A lane may be dropped to see whether fewer copy as fast: lanes are tuned and more
    /// than one is open.
    var canDropLane: Bool { laneMode == .auto && lanes > 1 }

    func canStep(_ dimension: Dimension) -> Bool {
        switch dimension {
        case .lanes: return laneMode == .auto && lanes < configuration.maximumLanes
        case .requestSize: return mayUse(sizeIndex + 1)
        }
    }

    /// Whether the size at `index` exists and may be tried now: up to `ceiling` if given,
    /// otherwise up to the largest size the climb allows; and no larger than a lane moves
    /// in `longestRequestTime` at the rate measured last.
    func mayUse(_ index: Int, ceiling: UInt64? = nil) -> Bool {
        let limit = ceiling ?? (perRequestCostFound ? configuration.largestFittedSize : configuration.ordinaryLargestSize)
        guard index < configuration.requestSizes.count, configuration.requestSizes[index] <= limit else { return false }
        guard let laneBytesPerSecond else { return true }
        return Double(configuration.requestSizes[index]) <= laneBytesPerSecond * configuration.longestRequestTime.seconds
    }

    /// The most rungs up to `rungs` that the size may go up now (`mayUse`); 0 if none.
    func rungsAllowed(upTo rungs: Int) -> Int {
        (0...rungs).last { $0 == 0 || mayUse(sizeIndex + $0) } ?? 0
    }

    /// How many lanes the next step up adds. One; but where the first look found a fixed
    /// cost per request, as many as are open: there each connection's rate is its requests'
    /// latency, so lanes pay nearly in proportion until the machine is the limit, a doubling
    /// shows far above the noise where one more lane of eight would not, and 4 → 16 takes
    /// two probes rather than twelve. After a step up was taken back, half the way to the
    /// count it tried.
    var laneStepUp: Int {
        let room = configuration.maximumLanes - lanes
        guard perRequestCostFound else { return min(1, room) }
        let belowCeiling = laneCeiling.map { ($0 - lanes) / 2 } ?? .max
        return max(1, min(lanes, room, belowCeiling))
    }

    /// A step up; `rungs` for a request-size step chosen by the first look or its fit
    /// (otherwise one, or two while leaps pay), no larger than `ceiling` if given; `kind`
    /// for a probe that is not a plain step or leap (the first look's, the fit's, the
    /// periodic one).
    mutating func step(_ dimension: Dimension, baseline: Double, now: Duration, prefix: String?,
                       leaping: Bool? = nil, rungs chosen: Int? = nil, ceiling: UInt64? = nil,
                       kind chosenKind: Probe.Kind? = nil) -> TuningDecision {
        firstLookPending = false
        let before = (lanes, requestSize)
        let decision: TuningDecision
        var rungs = 1
        var laneStep = 1
        var kind = Probe.Kind.step
        switch dimension {
        case .lanes:
            laneStep = laneStepUp
            lanes += laneStep
            let what = laneStep == 1 ? "adding lane \(lanes) to see if it raises" : "adding lanes \(before.0 + 1)–\(lanes) to see if they raise"
            decision = TuningDecision(action: .addLane, lanesBefore: before.0, lanesAfter: lanes, requestSizeBefore: before.1,
                                      requestSizeAfter: requestSize, baselineBytesPerSecond: baseline,
                                      reason: Self.joined(prefix, "\(what) \(Self.rate(baseline))"))
        case .requestSize:
            if let chosen {
                rungs = max(1, (1...chosen).last { mayUse(sizeIndex + $0, ceiling: ceiling) } ?? 1)
            } else if (leaping ?? leapsPay) && mayUse(sizeIndex + 2) {
                rungs = 2
                kind = .leap
            }
            sizeIndex += rungs
            decision = TuningDecision(action: .growRequestSize, lanesBefore: before.0, lanesAfter: lanes, requestSizeBefore: before.1,
                                      requestSizeAfter: requestSize, baselineBytesPerSecond: baseline,
                                      reason: Self.joined(prefix, "trying \(Self.size(requestSize)) requests to see if they raise \(Self.rate(baseline))"))
        }
        if let chosenKind { kind = chosenKind }
        phase = .probing(Probe(dimension: dimension, baseline: baseline, startedAt: now, applied: dimension == .requestSize,
                               rungs: rungs, laneStep: laneStep, kind: kind))
        restartWindow(now)
        if case .firstLook(_, _, decisive: false) = kind, let settleUntil {
            self.settleUntil = max(settleUntil, now + configuration.firstLookStepSettle)
        }
        lastDecision = decision
        return decision
    }

    mutating func concludeProbe(_ probe: Probe, measured rate: Double, now: Duration, early: Bool) -> [TuningDecision] {
        let change = probe.baseline > 0 ? rate / probe.baseline - 1 : (rate > 0 ? 1 : 0)
        let what = probe.dimension == .requestSize ? "\(Self.size(requestSize)) requests"
            : probe.addsSeveralLanes ? "lanes \(lanes - probe.laneStep + 1)–\(lanes)" : "lane \(lanes)"
        let comparison = "\(Self.rate(probe.baseline)) → \(Self.rate(rate)), \(Self.percent(change))"
        let leapt = probe.dimension == .requestSize && probe.rungs > 1
        let wanted = probe.wanted(configuration)
        if probe.fewer, change >= -configuration.fewerTolerance {
            return keptFewer(probe, measured: rate, now: now, comparison: comparison)
        }
        if change >= wanted {
            if probe.dimension == .lanes { moreLanesPaid = true }
            // A fitted size already spends at most a fifth of each request on the fixed
            // cost: a doubling could add about a tenth, the noise of one window here, and
            // its probe would cost a window. Lanes go on; sizes wait for a periodic probe.
            // Unless the jump paid half again: then the fit (two short, noisy windows)
            // underestimated the fixed cost, and sizes climb on.
            // The periodic probe only checks: kept, it holds again at the new setting, and
            // the next probe is 30 s on (a parallel server: 4M kept at 35 s on an early
            // window, +18%, and the climb went on with two more probes before 60 s).
            switch probe.kind {
            case .periodic: settled = [.lanes, .requestSize]
            case .fitted where change < configuration.leap: settled = [.requestSize]
            default: settled = []
            }
            // After a fitted jump the next size is not a doubling that pays in proportion:
            // the fit already chose where the fixed cost stops mattering.
            if probe.dimension == .requestSize { leapsPay = probe.kind != .fitted && change >= configuration.leap }
            let prefix = "\(what) kept (\(comparison))"
            if case .firstLook(let size, let service, _) = probe.kind {
                // The fit says whether there is a fixed cost.
                if let jump = fit(from: (size, service), measured: rate, now: now, prefix: prefix) { return [jump] }
            }
            // Measured again, on a fresh window (no settle: nothing changed), before the
            // climb goes on, where the window that kept the step is a poor baseline for the
            // next probe:
            // - lanes, or the fitted size that lanes then double from, kept early because
            //   they looked clearly better: the window flatters them and makes the next
            //   probe look worse (a serialized server's 16M read early at 2.8 GB/s made
            //   eight lanes, 3.2 GB/s, look 4% worse);
            // - the first look's step: its ticks are the pipelines filling with the new
            //   size and read far below what it sustains (a serialized server's 16M kept at
            //   725 MB/s, then lanes 5–8 kept for +151% at 1.8 GB/s, where 4 lanes of 16M
            //   copy as fast as 8);
            // - several lanes kept, after their turnover: their window began as they
            //   opened and reads low (8 lanes of 16M read 1.9–2.1 GB/s, then 12 or 16 were
            //   kept for +18–22%, where 8 copy fastest);
            // - the periodic probe's step: that window is the reference the hold compares
            //   with, and the next probe's baseline.
            // Not the other size steps of the climb: it is decided by large, lasting gains,
            // and each extra window would cost a short copy on a slow server much of its time.
            let measuredAgain = probe.dimension == .lanes || probe.kind.isFirstLook || probe.kind == .fitted || probe.kind == .periodic
            guard early || probe.addsSeveralLanes, measuredAgain else {
                return climb(from: rate, now: now, prefix: prefix, preferring: probe.dimension)
            }
            if probe.addsSeveralLanes { restartWindow(now) }
            nextWindow = .climbAgain(reason: prefix, preferring: probe.kind.isFirstLook ? .requestSize : .lanes)
            phase = .measuring
            return []
        }
        leapsPay = false
        // Several lanes at once that paid something, but not `laneLeap`: half as many are
        // tried next, unless it was the periodic probe, which only checks. Those that paid
        // nothing say that half as many would not either (a serialized server: 9–16 +1%
        // over 8, then 9–12 +2%, 9–10 -3%, and lane 9 kept on noise).
        let halfAsMany = probe.addsSeveralLanes && change >= configuration.gain && probe.kind != .periodic
        if !leapt && !halfAsMany { settled.insert(probe.dimension) }
        if probe.fewer { return givenBack(probe, measured: rate, now: now, comparison: comparison) }
        let before = (lanes, requestSize)
        let action: TuningDecision.Action
        switch probe.dimension {
        case .lanes:
            laneCeiling = min(laneCeiling ?? .max, lanes)
            lanes -= probe.laneStep
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
        // A decisive look that lost read a server slow for a moment, not a cost per request
        // (qemu-nbd just started, beside a busy loop: 2.0 to 3.0 ms a request on the first
        // tick, 0.7 to 0.9 after): the first look it skipped comes now, at the size before,
        // for its cut to one lane a core (its own size step was the one just lost).
        // Without it the climb went on one lane at a time from 4 lanes of 256K, and such a
        // copy of 2 GiB took 2.1 to 2.5 s against 1.2 to 1.6.
        if probe.kind.isDecisiveLook {
            decisiveLookTakenBack = true
            firstLookPending = true
            return [taken]
        }
        // Not after the periodic probe: a lane fewer is one of its own turns.
        if probe.dimension == .lanes && probe.kind != .periodic && !probe.addsSeveralLanes && !moreLanesPaid && !fewerLanesTried
            && canDropLane {
            nextWindow = .fewerLanes
            return [taken]
        }
        // A size step on a light server that lost: its gain there is 5 to 15%, less than
        // two windows of the same setting differ by on a busy 2-core machine (null on
        // 2 lanes: 1M taken back for -20% after a window of 512K that read high, where 1M
        // copies about 10% faster). It is tried once more, from a fresh window of the size
        // before it, once per size in a copy.
        if probe.dimension == .requestSize, probe.kind == .step, !perRequestCostFound,
           retriedSizes.insert(sizeIndex + probe.rungs).inserted {
            nextWindow = .retrySizeStep
            return [taken]
        }
        // Half as many lanes: from a fresh window, as a doubling's probe lasts long enough
        // for the rate before it to be old (a copy still warming up reads faster each
        // second, and a half step judged against the rate before the doubling is kept
        // for that).
        if probe.addsSeveralLanes && !settled.contains(.lanes) {
            nextWindow = .climbAgain(reason: nil, preferring: .lanes)
            return [taken]
        }
        // The rate before the probe still holds: go on from it without measuring again,
        // with the rung a leap skipped when it was one.
        var next = probe.kind == .leap ? [step(.requestSize, baseline: probe.baseline, now: now, prefix: nil, leaping: false)]
            : climb(from: probe.baseline, now: now, prefix: nil, preferring: probe.addsSeveralLanes ? .lanes : nil)
        if next.count == 1, next[0].action == .hold {
            // The take-back already says what happened; holding needs no second event.
            lastDecision = taken
            return [taken]
        }
        next.insert(taken, at: 0)
        return next
    }

    /// `count` lanes fewer, to see whether fewer copy as fast as `baseline`: the lane
    /// count the copy started with may be more than the machine can serve.
    mutating func stepFewer(_ count: Int, baseline: Double, now: Duration, prefix: String?,
                            kind: Probe.Kind = .step) -> TuningDecision {
        let before = lanes
        lanes -= count
        let what = count == 1 ? "dropping lane \(before)" : "dropping lanes \(lanes + 1)–\(before)"
        let decision = TuningDecision(action: .dropLane, lanesBefore: before, lanesAfter: lanes, requestSizeBefore: requestSize,
                                      requestSizeAfter: requestSize, baselineBytesPerSecond: baseline,
                                      reason: Self.joined(prefix, "\(what) to see if fewer copy as fast as \(Self.rate(baseline))"))
        phase = .probing(Probe(dimension: .lanes, baseline: baseline, startedAt: now, applied: true, laneStep: count, fewer: true,
                               kind: kind))
        restartWindow(now)
        lastDecision = decision
        return decision
    }

    /// Fewer lanes copied as fast, within `fewerTolerance`, or faster: they stay dropped.
    /// After one lane fewer, one more fewer is tried, judged against the best rate of the
    /// chain, not the last, so small losses cannot add up. After the cut to one lane a
    /// core (`cutToCores`), the check of lanes added since a change or the periodic probe,
    /// none.
    mutating func keptFewer(_ probe: Probe, measured rate: Double, now: Duration, comparison: String) -> [TuningDecision] {
        // The periodic probe only checks: it holds again.
        settled = probe.kind == .periodic ? [.lanes, .requestSize] : []
        let dropped = probe.laneStep == 1 ? "lane \(lanes + 1)" : "lanes \(lanes + 1)–\(lanes + probe.laneStep)"
        let prefix = "\(dropped) dropped for good (\(comparison))"
        if probe.kind.isCoresCut { fewerLanesTried = true }
        guard lanes > 1, !probe.kind.endsTheFewerChain else { return climb(from: rate, now: now, prefix: prefix, preferring: .requestSize) }
        return [stepFewer(1, baseline: max(rate, probe.baseline), now: now, prefix: prefix)]
    }

    /// Fewer lanes lost more than `fewerTolerance`: the lanes come back (and the size, when
    /// it went up with them), and the next decision waits for a window measured with them
    /// open (they take a moment to connect). A cut to one lane a core is judged again on
    /// that window (`recheckCut`).
    mutating func givenBack(_ probe: Probe, measured rate: Double, now: Duration, comparison: String) -> [TuningDecision] {
        fewerLanesTried = true
        let before = lanes
        lanes += probe.laneStep
        let what = probe.laneStep == 1 ? "lane \(lanes)" : "lanes \(before + 1)–\(lanes)"
        let lost = "\(before) lane\(before == 1 ? "" : "s") lost more than \(Self.share(configuration.fewerTolerance)) (\(comparison))"
        var decisions = [TuningDecision(action: .addLane, lanesBefore: before, lanesAfter: lanes, requestSizeBefore: requestSize,
                                        requestSizeAfter: requestSize, baselineBytesPerSecond: probe.baseline,
                                        measuredBytesPerSecond: rate, reason: "\(what) given back: \(lost)")]
        phase = .measuring
        if case .coresCut(let rungs) = probe.kind {
            nextWindow = .recheckCut(GivenBackCut(bytesPerSecond: rate, laneStep: probe.laneStep, rungs: rungs))
            if rungs > 0 {
                let larger = requestSize
                sizeIndex -= rungs
                decisions.append(TuningDecision(action: .shrinkRequestSize, lanesBefore: lanes, lanesAfter: lanes, requestSizeBefore: larger,
                                                requestSizeAfter: requestSize, baselineBytesPerSecond: probe.baseline,
                                                measuredBytesPerSecond: rate, reason: "\(Self.size(larger)) requests taken back with them"))
            }
        }
        restartWindow(now)
        lastDecision = decisions[0]
        return decisions
    }
}
