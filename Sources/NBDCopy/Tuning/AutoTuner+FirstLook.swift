import Telemetry
/// The first look: from the first ticks at the starting size, whether requests have a
/// cost of their own, and the fit of the server's shape that picks the size to jump to.
extension AutoTuner {
    /// The first look's step has its ticks: the fit needs no stable window, as its step
    /// is far larger than the noise.
    var firstLookStepIsMeasured: Bool {
        guard case .probing(let probe) = phase, case .firstLook = probe.kind else { return false }
        return window.samples.count >= configuration.firstLookSamples
    }

    /// After the first ticks at the starting size: when a request costs a lane a
    /// 0.6 ms or more, cuts lanes to one a core with the size `costlyServerRungs` up where
    /// the server shares this machine's cores and the cost is short of a decisive one, and
    /// otherwise steps up `firstLookRungs` at once to fit the server's shape (unless a
    /// decisive look's step was taken back before it).
    mutating func firstLook(now: Duration) -> [TuningDecision] {
        let rate = window.bytesPerSecond
        laneBytesPerSecond = rate / Double(lanes)
        guard let service = ServerShape.serviceTime(requestSize: requestSize, lanes: lanes, bytesPerSecond: rate) else { return [] }
        guard service >= configuration.slowServiceTime else {
            return cutToCores(service, rungs: rungsAllowed(upTo: configuration.lightServerRungs), what: "a light server", now: now)
        }
        // Short of a decisive cost, and only with larger requests: fewer lanes alone halve
        // the requests a server with a cost of its own serves at once (a serialized server
        // at 5 ms, its size fixed, copies at half the rate on half the lanes).
        let rungs = rungsAllowed(upTo: configuration.costlyServerRungs)
        if service < configuration.decisiveServiceTime, rungs > 0 {
            let cut = cutToCores(service, rungs: rungs, what: "a server", now: now)
            guard cut.isEmpty else { return cut }
        }
        // After a decisive look's step was taken back, larger requests were tried already.
        guard canStep(.requestSize), !decisiveLookTakenBack else { return [] }
        let kind = Probe.Kind.firstLook(requestSize: requestSize, serviceTime: service, decisive: false)
        return [step(.requestSize, baseline: rate, now: now, prefix: serviceWords(service),
                     rungs: configuration.firstLookRungs, kind: kind)]
    }

    /// Before the first look's window: two ticks in a row whose service time is
    /// `decisiveServiceTime` or more, or one of `decisiveTickServiceTime`, step at once to
    /// the largest size a fit may choose, or that a lane moves in `longestRequestTime` at
    /// its rate now, if smaller.
    mutating func decisiveFirstLook(_ measurement: Measurement) -> TuningDecision? {
        guard firstLookPending, !decisiveLookTakenBack, case .measuring = phase, canStep(.requestSize),
              let service = ServerShape.serviceTime(requestSize: requestSize, lanes: lanes,
                                                    bytesPerSecond: measurement.bytesPerSecond) else { return nil }
        decisiveTicks = service >= configuration.decisiveServiceTime ? decisiveTicks + 1 : 0
        guard decisiveTicks >= 2 || service >= configuration.decisiveTickServiceTime else { return nil }
        let affordable = measurement.bytesPerSecond / Double(lanes) * configuration.longestRequestTime.seconds
        // Not even the next rung: a server this slow per byte is left to the first look.
        guard let target = configuration.requestSizes.indices.last(where: {
            $0 > sizeIndex && Double(configuration.requestSizes[$0]) <= affordable
        }) else { return nil }
        // Past the climb's ceiling: the step tests the fixed cost per request that only a
        // fit would otherwise find. The fit, once the step is measured, says whether it did.
        let kind = Probe.Kind.firstLook(requestSize: requestSize, serviceTime: service, decisive: true)
        return step(.requestSize, baseline: measurement.bytesPerSecond, now: measurement.now, prefix: serviceWords(service),
                    rungs: target - sizeIndex, ceiling: configuration.largestFittedSize, kind: kind)
    }

    /// The first look of a server that shares this machine's cores (`sharedCores`): lanes
    /// are cut to one a core and the size goes up `rungs` with them (rungs the size may
    /// go now, `rungsAllowed`), as one probe of fewer lanes: kept within `fewerTolerance`,
    /// otherwise both are taken back. Nothing where an endpoint is across the network, or
    /// lanes are one a core already.
    mutating func cutToCores(_ service: Duration, rungs: Int, what: String, now: Duration) -> [TuningDecision] {
        guard laneMode == .auto, let cores = configuration.sharedCores, lanes > max(1, cores) else { return [] }
        let count = max(1, cores)
        let rate = window.bytesPerSecond
        let cut = stepFewer(lanes - count, baseline: rate, now: now,
                            prefix: "\(serviceWords(service)): \(what) on this machine's \(count) core\(count == 1 ? "" : "s"), one lane a core",
                            kind: .coresCut(rungs: rungs))
        guard rungs > 0 else { return [cut] }
        return [cut, growWithCut(rungs, baseline: rate, reason: "with one lane a core, judged together")]
    }

    /// The size `rungs` up with the cut to one lane a core.
    private mutating func growWithCut(_ rungs: Int, baseline: Double, reason: String) -> TuningDecision {
        let smaller = requestSize
        sizeIndex += rungs
        return TuningDecision(action: .growRequestSize, lanesBefore: lanes, lanesAfter: lanes, requestSizeBefore: smaller,
                              requestSizeAfter: requestSize, baselineBytesPerSecond: baseline,
                              reason: "\(Self.size(requestSize)) requests \(reason)")
    }

    /// What a cut to one lane a core copied before it was given back.
    struct GivenBackCut: Sendable {
        var bytesPerSecond: Double
        var laneStep: Int
        var rungs: Int
    }

    /// The cut was given back against the first look's baseline: two ticks, early in the
    /// copy, that may read far above what the lanes sustain (null on 2 cores: 4.9 GB/s,
    /// where a full window at 4 lanes of 256K then read 3.7). `rate` is a full window at the
    /// lanes given back; when the cut copied within `fewerTolerance` of it, the cut is made
    /// again, for good, and the next window measures it before the climb goes on.
    mutating func recheckCut(_ cut: GivenBackCut, against rate: Double, now: Duration) -> [TuningDecision]? {
        guard laneMode == .auto, lanes > cut.laneStep, cut.bytesPerSecond >= rate * (1 - configuration.fewerTolerance) else { return nil }
        let before = lanes
        lanes -= cut.laneStep
        let comparison = "\(Self.rate(rate)) at \(before) lanes on a full window, \(Self.rate(cut.bytesPerSecond)) at \(lanes)"
        var decisions = [TuningDecision(action: .dropLane, lanesBefore: before, lanesAfter: lanes, requestSizeBefore: requestSize,
                                        requestSizeAfter: requestSize, baselineBytesPerSecond: rate,
                                        measuredBytesPerSecond: cut.bytesPerSecond,
                                        reason: "lanes \(lanes + 1)–\(before) dropped again, for good: one lane a core copied within \(Self.share(configuration.fewerTolerance)) of it (\(comparison))")]
        let rungs = rungsAllowed(upTo: cut.rungs)
        if rungs > 0 { decisions.append(growWithCut(rungs, baseline: rate, reason: "again with them")) }
        settled = []
        phase = .measuring
        restartWindow(now)
        lastDecision = decisions[0]
        return decisions
    }

    /// Why a first look steps: what a request costs a lane at the size now.
    private func serviceWords(_ service: Duration) -> String {
        "a request takes a lane \(Self.milliseconds(service)) at \(Self.size(requestSize))"
    }

    /// The first look's step paid: fit the server's shape and jump to the size it wants.
    mutating func fit(from first: (requestSize: UInt64, serviceTime: Duration), measured rate: Double,
                              now: Duration, prefix: String) -> TuningDecision? {
        guard let service = ServerShape.serviceTime(requestSize: requestSize, lanes: lanes, bytesPerSecond: rate),
              let shape = ServerShape(first, (requestSize, service)) else { return nil }
        perRequestCostFound = true
        let allowed = configuration.requestSizes.indices.filter { mayUse($0, ceiling: configuration.largestFittedSize) }
        let target = shape.requestSize(among: allowed.map { configuration.requestSizes[$0] }, efficiency: configuration.efficiency)
        guard let index = configuration.requestSizes.firstIndex(of: target), index > sizeIndex else { return nil }
        let perLane = shape.bytesPerSecond.isFinite ? ", \(Self.rate(shape.bytesPerSecond)) a lane" : ""
        return step(.requestSize, baseline: rate, now: now,
                    prefix: "\(prefix); the server spends \(Self.milliseconds(shape.perRequest)) per request\(perLane)",
                    rungs: index - sizeIndex, kind: .fitted)
    }
}
