import Testing
#if canImport(Glibc)
import Glibc
#endif
@testable import NBDCopy
@testable import Dashboard

@Suite("Screen dumps (print with DASHBOARD_DUMP=1)")
struct ScreenDump {
    @Test func dump() {
        guard let value = getenvValue("DASHBOARD_DUMP"), !value.isEmpty else { return }
        var state = Fixtures.state()
        state.selected = ConnectionID(laneID: 2, side: .source)
        state.log("lane 2 added", severity: .ok, at: .seconds(3))
        state.log("lane 1 src stalled: oldest request 900ms, 40 waiting behind it", severity: .warning, at: .seconds(5))
        state.hint = "press + to add a lane"
        for (columns, rows) in [(80, 24), (200, 50), (60, 16), (120, 40)] {
            let grid = render(snapshot: Fixtures.snapshot(lanes: 3, stalledLane: 1), state: state, theme: .default,
                              size: (columns, rows))
            print("=== \(columns)x\(rows)")
            print(grid.plainText)
        }
        state.helpVisible = true
        print(render(snapshot: Fixtures.snapshot(), state: state, theme: .default, size: (80, 24)).plainText)
    }
}

func getenvValue(_ name: String) -> String? {
    getenv(name).map { String(cString: $0) }
}
