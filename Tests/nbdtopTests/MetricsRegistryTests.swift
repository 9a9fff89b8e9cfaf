import NBD
import Testing
@testable import nbdtop
@testable import Telemetry

/// The Prometheus registry set from frames: totals become counters, the new round trips of
/// each frame go into the histogram exactly, and series of ended lanes stay.
@Suite struct MetricsRegistryTests {
    static func connection(lane: Int, bytes: UInt64, roundTripsMicroseconds: [UInt64], errors: [NBDErrno?] = []) -> ConnectionSnapshot {
        var figures = ConnectionSnapshot(laneID: lane, side: .destination, state: .active)
        figures.bytes = bytes
        var tally = RequestTally()
        for microseconds in roundTripsMicroseconds {
            tally.record(.write, roundTripNanoseconds: microseconds * 1_000, succeeded: true, errno: nil)
        }
        for errno in errors { tally.record(.write, roundTripNanoseconds: 0, succeeded: false, errno: errno) }
        figures.tally = tally
        return figures
    }

    static func frame(_ connections: [ConnectionSnapshot], done: UInt64) -> MetricsFrame {
        MetricsFrame(copy: CopySnapshot(bytesTotal: 1 << 30, bytesDone: done, lanes: connections.count, connections: connections))
    }

    static func lines(_ registry: MetricsRegistry) -> Set<String> {
        Set(String(decoding: registry.exposition, as: UTF8.self).split(separator: "\n").map(String.init))
    }

    @Test func countersAndHistogramFollowTheFrames() {
        let registry = MetricsRegistry()
        #expect(registry.exposition.isEmpty)
        registry.update(Self.frame([Self.connection(lane: 1, bytes: 4096, roundTripsMicroseconds: [50, 60, 3_000]),
                                    Self.connection(lane: 2, bytes: 10, roundTripsMicroseconds: [20_000_000])], done: 4106))
        var lines = Self.lines(registry)
        #expect(lines.contains(#"nbdtop_connection_bytes_total{lane="1",side="dst"} 4096"#))
        #expect(lines.contains(#"nbdtop_connection_request_duration_seconds_bucket{lane="1",side="dst",le="0.0001"} 2"#))
        #expect(lines.contains(#"nbdtop_connection_request_duration_seconds_bucket{lane="1",side="dst",le="0.005"} 3"#))
        #expect(lines.contains(#"nbdtop_connection_request_duration_seconds_count{lane="1",side="dst"} 3"#))
        #expect(lines.contains(#"nbdtop_connection_request_duration_seconds_sum{lane="1",side="dst"} 0.00311"#))
        // Beyond the largest bound: only in +Inf.
        #expect(lines.contains(#"nbdtop_connection_request_duration_seconds_bucket{lane="2",side="dst",le="10.0"} 0"#))
        #expect(lines.contains(#"nbdtop_connection_request_duration_seconds_bucket{lane="2",side="dst",le="+Inf"} 1"#))
        #expect(lines.contains("nbdtop_copy_done_bytes 4106.0"))
        #expect(lines.contains("# TYPE nbdtop_connection_bytes_total counter"))

        // Lane 1 moved on; lane 2 is not in the frame (ended) and keeps its series.
        registry.update(Self.frame([Self.connection(lane: 1, bytes: 8192, roundTripsMicroseconds: [50, 60, 3_000, 70, 7],
                                                    errors: [.eio, .eio, nil])], done: 8192))
        lines = Self.lines(registry)
        #expect(lines.contains(#"nbdtop_connection_bytes_total{lane="1",side="dst"} 8192"#))
        #expect(lines.contains(#"nbdtop_connection_request_duration_seconds_count{lane="1",side="dst"} 5"#))
        #expect(lines.contains(#"nbdtop_connection_request_duration_seconds_bucket{lane="1",side="dst",le="0.0001"} 4"#))
        #expect(lines.contains(#"nbdtop_connection_request_duration_seconds_sum{lane="1",side="dst"} 0.003187"#))
        #expect(lines.contains(#"nbdtop_connection_requests_total{lane="1",side="dst",op="write"} 8"#))
        #expect(lines.contains(#"nbdtop_connection_errors_total{lane="1",side="dst",errno="EIO"} 2"#))
        #expect(lines.contains(#"nbdtop_connection_errors_total{lane="1",side="dst",errno="none"} 1"#))
        #expect(lines.contains(#"nbdtop_connection_bytes_total{lane="2",side="dst"} 10"#))
        #expect(lines.contains("nbdtop_copy_done_bytes 8192.0"))
    }

    @Test(arguments: [
        ("9100", "127.0.0.1", 9100), (":9100", "127.0.0.1", 9100), ("0.0.0.0:80", "0.0.0.0", 80),
        ("localhost:0", "localhost", 0), ("[::1]:9100", "::1", 9100),
    ])
    func addressesParse(text: String, host: String, port: Int) {
        #expect(MetricsAddress(argument: text) == MetricsAddress(host: host, port: port))
    }

    @Test(arguments: ["", "host", "host:", ":65536", "::1:9100", "[::1]", "[]:1", "1.2.3.4:-1", "h:9x"])
    func badAddressesAreRefused(text: String) {
        #expect(MetricsAddress(argument: text) == nil)
    }
}
