import Telemetry
/// Holding: a marked change starts the climb again, and otherwise one probe every
/// `probeInterval` checks the setting.
extension AutoTuner {
    /// The step the periodic probe takes, in turn: a larger size, a lane more, a lane
    /// fewer. Every other probe of a hold only goes up, so without the last a lane kept on
    /// a noisy window, or on a machine that has moved on since, would stay for the rest of
    /// a long copy.
    enum PeriodicStep: CaseIterable, Sendable {
        case requestSize, lanes, fewerLanes
    }

    /// A window measured while holding: `reference` is the mean of the `windows` before it
    /// since the hold began (`since`), `changedWindows` how many in a row just before it
    /// moved by more than `markedChange`.
    mutating func hold(reference: Double, windows: Int, since: Duration, changedWindows: Int,
                       measured rate: Double, now: Duration) -> [TuningDecision] {
        let change = reference > 0 ? rate / reference - 1 : 0
        if abs(change) > configuration.markedChange {
            if changedWindows + 1 < 2 {
                phase = .holding(reference: reference, windows: windows, since: since, changedWindows: changedWindows + 1)
                return []
            }
            settled = []
            laneCeiling = nil
            lanesBeforeChange = lanes
            return climb(from: rate, now: now,
                         prefix: "the rate changed \(Self.percent(change)) (\(Self.rate(reference)) → \(Self.rate(rate))): probing again")
        }
        let mean = (reference * Double(windows) + rate) / Double(windows + 1)
        guard now - since >= configuration.probeInterval else {
            phase = .holding(reference: mean, windows: windows + 1, since: since, changedWindows: 0)
            return []
        }
        // The next step in turn that can be taken.
        let steps = PeriodicStep.allCases
        let next = (steps.firstIndex(of: lastPeriodic)! + 1) % steps.count
        guard let chosen = (steps[next...] + steps[..<next]).first(where: canTakePeriodic) else {
            phase = .holding(reference: mean, windows: windows + 1, since: now, changedWindows: 0)
            return []
        }
        lastPeriodic = chosen
        let prefix = "\(Int(configuration.probeInterval.seconds)) s since the last probe"
        switch chosen {
        case .requestSize:
            settled = [.lanes]
            return [step(.requestSize, baseline: mean, now: now, prefix: prefix, kind: .periodic)]
        case .lanes:
            settled = [.requestSize]
            return [step(.lanes, baseline: mean, now: now, prefix: prefix, kind: .periodic)]
        case .fewerLanes:
            settled = [.requestSize]
            return [stepFewer(1, baseline: mean, now: now, prefix: prefix, kind: .periodic)]
        }
    }

    private func canTakePeriodic(_ periodic: PeriodicStep) -> Bool {
        switch periodic {
        case .requestSize: return canStep(.requestSize)
        case .lanes: return canStep(.lanes)
        case .fewerLanes: return canDropLane
        }
    }
}
