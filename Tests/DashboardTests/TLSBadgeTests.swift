@testable import Telemetry
import Testing
@testable import Dashboard

@Suite("The TLS badge in the title bar")
struct TLSBadgeTests {
    let theme = Theme.default.mapped(to: .palette256)

    @Test func badgeNamesTheSidesThatUseTLS() {
        #expect(DashboardState.tlsBadge(source: true, destination: true) == "TLS")
        #expect(DashboardState.tlsBadge(source: true, destination: false) == "TLS src")
        #expect(DashboardState.tlsBadge(source: false, destination: true) == "TLS dst")
        #expect(DashboardState.tlsBadge(source: false, destination: false) == nil)
    }

    @Test func badgeIsDrawnOnlyWithTLS() {
        var state = Fixtures.state()
        let plain = render(snapshot: Fixtures.snapshot(), state: state, theme: theme, size: (80, 24))
        #expect(!plain.text(row: 0).contains("TLS"))
        state.tls = "TLS src"
        let encrypted = render(snapshot: Fixtures.snapshot(), state: state, theme: theme, size: (80, 24))
        #expect(encrypted.text(row: 0).contains(" TLS src "), "\(encrypted.text(row: 0))")
    }
}
