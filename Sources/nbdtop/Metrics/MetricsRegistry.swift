import NBDCopy
import Prometheus
import Synchronization
import Telemetry

/// The Prometheus series of one transfer, set from `MetricsFrame`s, and their text
/// exposition rendered once per frame so that a scrape only copies bytes.
///
/// swift-prometheus keeps the registry and writes the format. Its counters only grow and
/// its histograms only take observations, while a frame carries totals, so each update sets
/// a counter to the frame's total and feeds a histogram the observations added since the
/// last frame. Everything is protected by `lock`: an update and a render never interleave.
final class MetricsRegistry: Sendable {
    private let lock = Mutex(State())

    private struct State: ~Copyable {
        let registry = PrometheusCollectorRegistry()
        /// Each connection's round-trip totals as of the last frame, by its labels.
        var lastTally: [String: RequestTally] = [:]
        /// The text of the last frame: what `/metrics` serves.
        var exposition: [UInt8] = []
    }

    /// The text exposition of the last frame (empty before the first).
    var exposition: [UInt8] { lock.withLock { $0.exposition } }

    /// Sets every series from `frame` and renders the text a scrape gets.
    func update(_ frame: MetricsFrame) {
        lock.withLock { state in
            if let copy = frame.copy { Self.setCopy(copy, in: state.registry) }
            for connection in frame.connections {
                let key = connection.labels.map { "\($0.0)=\($0.1)" }.joined(separator: ",")
                let previous = state.lastTally[key] ?? RequestTally()
                Self.setConnection(connection, since: previous, in: state.registry)
                state.lastTally[key] = connection.figures.tally
            }
            state.exposition = state.registry.emitToBuffer()
        }
    }

    private static func setCopy(_ copy: CopySnapshot, in registry: PrometheusCollectorRegistry) {
        func gauge(_ name: String, _ unit: String, _ help: String, _ value: Double) {
            registry.makeGauge(descriptor: descriptor(name, unit, help)).set(value)
        }
        gauge("copy_done", "bytes", "Bytes the destination acknowledged, zeroed and skipped ranges included; goes back when unflushed work is copied again.", Double(copy.bytesDone))
        if let total = copy.bytesTotal {
            gauge("copy_size", "bytes", "Size of the image being copied.", Double(total))
        }
        gauge("copy_zero", "bytes", "Bytes made zero without data: zero requests plus skipped ranges.", Double(copy.bytesZeroed + copy.bytesSkipped))
        gauge("copy_skipped", "bytes", "Bytes that needed no request (known zero on both sides).", Double(copy.bytesSkipped))
        gauge("copy_completed_prefix", "bytes", "Every byte below this offset is done.", Double(copy.completedPrefix))
        gauge("copy_rate", "bytes_per_second", "Bytes the destination acknowledged per second, over the last second.", copy.bytesPerSecond)
        gauge("copy_average_rate", "bytes_per_second", "Bytes done per second since the copy started.", copy.averageBytesPerSecond)
        gauge("copy_elapsed", "seconds", "Time since the copy started.", seconds(copy.elapsed))
        gauge("copy_lanes", "", "Lanes (connection pairs) open now.", Double(copy.lanes))
        gauge("copy_max_lanes", "", "The most lanes the endpoints allow.", Double(copy.maximumLanes))
        gauge("copy_paused", "", "1 while the transfer is paused.", copy.paused ? 1 : 0)
        if let tuning = copy.tuning {
            gauge("copy_lanes_auto", "", "1 while the lane count is tuned (-C auto, not switched to manual).", tuning.laneMode == .auto ? 1 : 0)
            gauge("copy_request_size", "bytes", "Bytes per READ or WRITE handed out now.", Double(tuning.requestSize))
            gauge("copy_request_size_auto", "", "1 while the request size is tuned (--request-size auto).", tuning.requestSizeIsAuto ? 1 : 0)
        }
    }

    private static func setConnection(_ connection: MetricsFrame.Connection, since previous: RequestTally,
                                      in registry: PrometheusCollectorRegistry) {
        let labels = connection.labels, figures = connection.figures
        func counter(_ name: String, _ help: String, _ value: Double, extra: [(String, String)] = []) {
            let counter = registry.makeCounter(descriptor: descriptor(name, "total", help), labels: labels + extra)
            counter.reset()
            // Whole numbers stay integers in the text (`42`, not `42.0`).
            if value.rounded() == value && value < 0x1p63 {
                counter.increment(by: Int64(value))
            } else {
                counter.increment(by: value)
            }
        }
        func gauge(_ name: String, _ unit: String, _ help: String, _ value: Double) {
            registry.makeGauge(descriptor: descriptor(name, unit, help), labels: labels).set(value)
        }
        counter("connection_bytes", "Bytes this connection's requests moved, counted when answered successfully.", Double(figures.bytes))
        for (operation, count) in figures.tally.requestsByOperation {
            counter("connection_requests", "Requests answered, by operation.", Double(count), extra: [("op", operation.rawValue)])
        }
        for (errno, count) in figures.tally.errorsByErrno {
            counter("connection_errors", "Requests the server or file failed, by error number.", Double(count), extra: [("errno", errno)])
        }
        gauge("connection_in_flight", "requests", "Requests sent and not answered yet.", Double(figures.inFlight))
        gauge("connection_in_flight", "bytes", "Bytes of the requests in flight.", Double(figures.inFlightBytes))
        gauge("connection_rate", "bytes_per_second", "Bytes moved per second over the last second.", figures.bytesPerSecond)
        gauge("connection_stalled", "", "1 while the connection is in a head-of-line stall.", figures.stalled ? 1 : 0)
        counter("connection_stall_episodes", "Head-of-line stall episodes.", Double(figures.stallEpisodes))
        counter("connection_stalled_seconds", "Time spent stalled, a running episode included.", seconds(figures.stalledTime))
        counter("connection_held_requests", "Requests held behind a stalled request, summed over episodes.", Double(figures.requestsHeldBehind))
        counter("connection_slow_requests", "Requests far slower than the connection's median while it kept moving.", Double(figures.slowRequests))
        counter("connection_retries", "Requests tried again after failing on this connection.", Double(figures.retries))
        counter("connection_reconnects", "Times the connection was opened again after it broke.", Double(figures.reconnects))

        let histogram = registry.makeDurationHistogram(
            descriptor: descriptor("connection_request_duration", "seconds", "Round trips of successful requests."),
            labels: labels, buckets: RequestTally.latencyBucketBounds)
        // The new observations of each bucket are recorded at their mean, which lies in the
        // same bucket: the buckets, the count and the sum all come out exact.
        let tally = figures.tally
        for bucket in tally.latencyCounts.indices {
            let added = tally.latencyCounts[bucket] - previous.latencyCounts[bucket]
            guard added > 0 else { continue }
            let addedNanoseconds = tally.latencySumNanoseconds[bucket] &- previous.latencySumNanoseconds[bucket]
            let mean = addedNanoseconds / UInt64(added)
            let remainder = addedNanoseconds % UInt64(added)
            for index in 0..<added {
                // The remainder is spread over the first ones, so the sum stays exact.
                let extra: UInt64 = UInt64(index) < remainder ? 1 : 0
                histogram.record(.nanoseconds(Int64(clamping: mean + extra)))
            }
        }
    }

    private static func descriptor(_ name: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "nbdtop", metricName: name, unitName: unit, helpText: help)
    }

    private static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}
