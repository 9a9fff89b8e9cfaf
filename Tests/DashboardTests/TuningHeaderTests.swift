@testable import Telemetry
import Testing
@testable import Dashboard

/// The header says how lanes are chosen and the tuner's last decision in words.
@Suite struct TuningHeaderTests {
    let theme = Theme.default.mapped(to: .palette256)
    let size = TerminalSize(columns: 120, rows: 30)

    func headerText(_ tuning: TuningStatus?) -> String {
        var snapshot = Fixtures.snapshot(lanes: 5)
        snapshot.tuning = tuning
        let grid = render(snapshot: snapshot, state: Fixtures.state(), theme: theme, size: size)
        return (0..<DashboardLayout.headerRows).map { grid.text(row: $0) }.joined(separator: "\n")
    }

    @Test func autoShowsTheLastDecision() {
        let text = headerText(TuningStatus(laneMode: .auto, requestSizeIsAuto: true, requestSize: 1 << 20,
                                           lastDecision: "lane 5 kept (200 MB/s → 250 MB/s, +25%)"))
        #expect(text.contains("lanes 5/16 auto"), "\(text)")
        #expect(text.contains("auto: lane 5 kept"), "\(text)")
    }

    @Test func manualSaysSo() {
        let text = headerText(TuningStatus(laneMode: .manual, requestSizeIsAuto: false, requestSize: 1 << 20,
                                           lastDecision: "a lane was added or dropped by hand: lanes are manual"))
        #expect(text.contains("lanes 5/16 manual"), "\(text)")
        #expect(!text.contains(" auto "), "\(text)")
    }

    @Test func fixedSettingsShowTheLimitAsBefore() {
        let text = headerText(TuningStatus(laneMode: .fixed, requestSizeIsAuto: false, requestSize: 256 << 10))
        #expect(!text.contains("auto") && !text.contains("manual"), "\(text)")
        #expect(text.contains("source: server advertises multi-conn"), "\(text)")
    }

    @Test func theKeyTableListsAutoLanes() {
        #expect(KeyTable.action(for: .character("A")) == .autoLanes)
        var state = Fixtures.state()
        #expect(state.handle(.character("A"), latest: Fixtures.snapshot(lanes: 2), copyRunning: true) == .resumeAutoLanes)
    }
}
