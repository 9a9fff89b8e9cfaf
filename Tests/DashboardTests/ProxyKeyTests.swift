@testable import Telemetry
import Testing
@testable import Dashboard

@Suite("Over a proxy, the key table holds only the proxy's keys")
struct ProxyKeyTests {
    let snapshot = Fixtures.snapshot(lanes: 3)

    func proxyState() -> DashboardState {
        var state = DashboardState(sourceName: "clients", destinationName: "upstream", requestsPerLane: 64,
                                   themeNames: ["default", "mono"])
        state.proxy = true
        return state
    }

    @Test("lane, pause and stop keys are neither shown nor taken")
    func laneKeysAreNotTheProxys() {
        let shown = Set(KeyTable.bindings(attached: false, proxy: true).map(\.action))
        #expect(shown == KeyTable.proxyActions)
        var state = proxyState()
        for key in [Key.character("+"), .character("a"), .character("-"), .character("d"), .character("p"), .character("S")] {
            #expect(state.handle(key, latest: snapshot, copyRunning: true) == nil, "\(key)")
        }
        #expect(!state.quitConfirmationPending)
        let footer = Footer.entries(width: 200, proxy: true).map(\.text).joined()
        #expect(!footer.contains("add") && !footer.contains("drop") && !footer.contains("pause"))
        #expect(footer.contains("quit") && footer.contains("help") && footer.contains("theme"))
    }

    @Test("a client column names each connection's peer")
    func clientColumn() {
        var state = proxyState()
        state.connectionLabels = [1: "nbdcopy [4242]", 2: "127.0.0.1:50122"]
        let text = render(snapshot: snapshot, state: state, theme: Theme.default, size: (columns: 120, rows: 40)).plainText
        #expect(text.contains("client"))
        #expect(text.contains("nbdcopy [4242]") && text.contains("127.0.0.1:50122"))
        #expect(text.contains(" clients "))
        let plain = render(snapshot: snapshot, state: DashboardState(sourceName: "a", destinationName: "b", requestsPerLane: 64),
                           theme: Theme.default, size: (columns: 120, rows: 40)).plainText
        #expect(!plain.contains("nbdcopy ["))
    }

    @Test("the proxy's keys work as on a copy")
    func proxyKeysWork() {
        var state = proxyState()
        _ = state.handle(.character("t"), latest: snapshot, copyRunning: true)
        #expect(state.themeIndex == 1)
        _ = state.handle(.character(" "), latest: snapshot, copyRunning: true)
        #expect(state.isFrozen)
        _ = state.handle(.character("q"), latest: snapshot, copyRunning: true)
        #expect(state.quitConfirmationPending)
        #expect(state.handle(.character("y"), latest: snapshot, copyRunning: true) == .quit)
    }
}
