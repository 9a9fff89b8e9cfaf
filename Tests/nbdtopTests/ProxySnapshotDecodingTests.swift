import Control
import NBDCopy
import Testing
@testable import nbdtop
import Telemetry

/// `nbdtop attach` to a proxy: its sample lines decode into what the proxy's own
/// dashboard draws.
@Suite struct ProxySnapshotDecodingTests {
    @Test func aProxySampleDecodesIntoClientRowsAndCoverage() throws {
        let line = """
            {"v":1,"event":"sample","t":2.5,"mode":"proxy","bytes_done":1048576,"rate_bps":524288,"clients":1,\
            "export_size":4194304,"coverage_read":0.25,"coverage_written":0.0,"conns":[\
            {"id":1,"side":"client","state":"active","inflight":3,"inflight_bytes":0,"bytes":1048576,"rate_bps":524288,\
            "p50_ms":1.5,"p99_ms":2.0,"oldest_ms":null,"stalled":false,"stall_episodes":0,"stall_ms":0,\
            "stall_threshold_ms":null,"held":0,"held_total":0,"slow_requests":0,"slow_threshold_ms":null,"errors":0,\
            "retries":0,"reconnects":0,"reconnect_attempt":0,"client":{"pid":42,"uid":0,"comm":"nbdcopy"}},\
            {"id":2,"side":"client","state":"handshake","inflight":0,"inflight_bytes":0,"bytes":0,"rate_bps":0}]}
            """
        let snapshot = try #require(SnapshotDecoding.snapshot(sample: try JSONValue.parse(line), start: .null))
        #expect(snapshot.bytesTotal == 4 << 20)
        #expect(snapshot.bytesDone == 1 << 20)
        #expect(snapshot.lanes == 1 && snapshot.maximumLanes == 2)
        #expect(snapshot.connections.map(\.laneID) == [1, 2])
        #expect(snapshot.connections.map(\.state) == [.active, .connecting])
        #expect(snapshot.connections.first?.inFlight == 3)
        #expect(snapshot.laneLimitReason.contains("export read 25%"))
        #expect(SnapshotDecoding.clientLabels(sample: try JSONValue.parse(line)) == [1: "nbdcopy [42]"])
    }
}
