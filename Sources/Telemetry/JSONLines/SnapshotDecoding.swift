
/// Reads the lines of `StatsJSON` back: a `sample` into a `CopySnapshot`, an event line
/// into a `CopyEvent`, for `nbdtop attach`. The keys are the ones docs/telemetry.md
/// documents; what the lines do not carry (the completed prefix, per-second rate history)
/// is left at its default, and `ControlStream` keeps the history itself.
public enum SnapshotDecoding {
    /// The figures of a `sample` line; `start` (the start line) gives the lane limit and
    /// its reason. Nil when `sample` is not a sample.
    public static func snapshot(sample: JSONValue, start: JSONValue) -> CopySnapshot? {
        guard sample["event"]?.string == "sample" else { return nil }
        if sample["mode"]?.string == "proxy" { return proxySnapshot(sample: sample) }
        let skipped = sample["bytes_skipped"]?.uint ?? 0
        var snapshot = CopySnapshot(
            elapsed: duration(seconds: sample["t"]?.double ?? 0),
            bytesTotal: sample["bytes_total"]?.uint,
            bytesDone: sample["bytes_done"]?.uint ?? 0,
            bytesZeroed: (sample["bytes_zero"]?.uint ?? 0) - min(skipped, sample["bytes_zero"]?.uint ?? 0),
            bytesSkipped: skipped,
            bytesPerSecond: sample["rate_bps"]?.double ?? 0,
            averageBytesPerSecond: sample["avg_rate_bps"]?.double ?? 0,
            eta: sample["eta_s"]?.double.map { duration(seconds: $0) },
            lanes: integer(sample["lanes"]) ?? 0,
            maximumLanes: integer(start["max_lanes"]) ?? 1,
            laneLimitReason: start["max_lanes_reason"]?.string ?? "",
            paused: sample["paused"]?.bool ?? false,
            connections: (sample["conns"]?.array ?? []).compactMap(connection),
            tuning: tuning(sample))
        snapshot.destinationIsNBD = start["dst_nbd"]?.bool ?? true
        snapshot.bottleneck = bottleneck(sample["bottleneck"])
        return snapshot
    }

    /// The tuning keys of a `sample` line; nil when it has none.
    public static func tuning(_ sample: JSONValue) -> TuningStatus? {
        guard let mode = sample["lanes_mode"]?.string.flatMap(LaneMode.init(rawValue:)) else { return nil }
        return TuningStatus(laneMode: mode, requestSizeIsAuto: sample["request_size_mode"]?.string == "auto",
                            requestSize: sample["request_size_bytes"]?.uint ?? 0, lastDecision: sample["last_auto"]?.string)
    }

    /// A sample's `bottleneck` object; nil when null, missing or of an unknown kind.
    public static func bottleneck(_ value: JSONValue?) -> Bottleneck? {
        guard let kind = value?["kind"]?.string.flatMap(Bottleneck.Kind.init(rawValue:)) else { return nil }
        return Bottleneck(kind: kind, detail: value?["detail"]?.string ?? "")
    }

    /// A proxy's sample, drawn as the proxy's own dashboard draws it: the coverage as the
    /// progress, the clients connected now and seen as the lanes.
    public static func proxySnapshot(sample: JSONValue) -> CopySnapshot {
        let exportSize = sample["export_size"]?.uint
        let read = sample["coverage_read"]?.double ?? 0, written = sample["coverage_written"]?.double ?? 0
        let conns = (sample["conns"]?.array ?? []).compactMap(connection)
        return CopySnapshot(
            elapsed: duration(seconds: sample["t"]?.double ?? 0), bytesTotal: exportSize,
            bytesDone: exportSize.map { UInt64(max(read, written) * Double($0)) } ?? 0,
            bytesPerSecond: sample["rate_bps"]?.double ?? 0, lanes: integer(sample["clients"]) ?? 0,
            maximumLanes: conns.count,
            laneLimitReason: "clients now/seen; export read \(Int(read * 100))%, written \(Int(written * 100))%",
            connections: conns)
    }

    /// A proxy's clients by id as its dashboard names them: `nbdcopy [1234]`, `127.0.0.1:50122`.
    public static func clientLabels(sample: JSONValue) -> [Int: String] {
        var labels: [Int: String] = [:]
        for entry in sample["conns"]?.array ?? [] {
            guard let id = integer(entry["id"]), let client = entry["client"] else { continue }
            if let pid = client["pid"]?.int {
                labels[id] = "\(client["comm"]?.string ?? "pid") [\(pid)]"
            } else if let host = client["address"]?.string, let port = client["port"]?.int {
                labels[id] = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
            }
        }
        return labels
    }

    /// One entry of `conns`; nil without a valid `id`, `side` and `state`. A proxy's
    /// clients (`side` `client`) come in as source connections.
    public static func connection(_ value: JSONValue) -> ConnectionSnapshot? {
        let side = value["side"]?.string.flatMap { $0 == "client" ? .source : ConnectionSide(rawValue: $0) }
        let state = value["state"]?.string.flatMap { $0 == "handshake" ? .connecting : ConnectionState(rawValue: $0) }
        guard let laneID = integer(value["id"]), let side, let state else { return nil }
        var connection = ConnectionSnapshot(laneID: laneID, side: side, state: state)
        connection.failureReason = value["reason"]?.string
        connection.reconnectAttempt = integer(value["reconnect_attempt"]) ?? 0
        connection.reconnects = integer(value["reconnects"]) ?? 0
        connection.bytes = value["bytes"]?.uint ?? 0
        connection.bytesPerSecond = value["rate_bps"]?.double ?? 0
        connection.inFlight = integer(value["inflight"]) ?? 0
        connection.inFlightBytes = value["inflight_bytes"]?.uint ?? 0
        connection.latencyP50 = milliseconds(value["p50_ms"])
        connection.latencyP99 = milliseconds(value["p99_ms"])
        connection.oldestInFlight = milliseconds(value["oldest_ms"])
        connection.stallThreshold = milliseconds(value["stall_threshold_ms"])
        connection.slowThreshold = milliseconds(value["slow_threshold_ms"])
        connection.stalled = value["stalled"]?.bool ?? false
        connection.held = integer(value["held"]) ?? 0
        connection.slowRequests = integer(value["slow_requests"]) ?? 0
        connection.stallEpisodes = integer(value["stall_episodes"]) ?? 0
        connection.stalledTime = milliseconds(value["stall_ms"]) ?? .zero
        connection.requestsHeldBehind = integer(value["held_total"]) ?? 0
        connection.errors = integer(value["errors"]) ?? 0
        connection.retries = integer(value["retries"]) ?? 0
        return connection
    }

    /// An event line (`lane_added`, `stall`, `paused`, …) as the engine's event; nil for
    /// `start`, `sample`, `error`, `done` and anything unknown.
    public static func event(_ line: JSONValue) -> CopyEvent? {
        let id = integer(line["id"]), side = line["side"]?.string.flatMap(ConnectionSide.init(rawValue:))
        let reason = line["reason"]?.string ?? "", error = line["error"]?.string ?? ""
        switch line["event"]?.string {
        case "lane_added": return id.map { .laneAdded(laneID: $0) }
        case "lane_dropped": return id.map { .laneDropped(laneID: $0) }
        case "lane_failed": return id.map { .laneFailed(laneID: $0, reason: reason) }
        case "lane_refused": return .laneRefused(reason: reason)
        case "stall":
            guard let id, let side else { return nil }
            return .stall(laneID: id, side: side, oldestAge: milliseconds(line["oldest_ms"]) ?? .zero,
                          held: integer(line["held"]) ?? 0)
        case "slow_request":
            guard let id, let side, let operation = line["op"]?.string.flatMap(RequestOperation.init(rawValue:)) else { return nil }
            return .slowRequest(laneID: id, side: side, operation: operation, offset: line["offset"]?.uint ?? 0,
                                length: line["length"]?.uint ?? 0, latency: milliseconds(line["latency_ms"]) ?? .zero)
        case "retry":
            guard let id, let side else { return nil }
            return .retry(laneID: id, side: side, offset: line["offset"]?.uint ?? 0, length: line["length"]?.uint ?? 0,
                          attempt: integer(line["attempt"]) ?? 0, error: error)
        case "lane_reconnecting":
            guard let id, let side else { return nil }
            return .laneReconnecting(laneID: id, side: side, attempt: integer(line["attempt"]) ?? 0, error: error)
        case "lane_reconnected":
            guard let id, let side else { return nil }
            return .laneReconnected(laneID: id, side: side)
        case "auto":
            guard let action = line["action"]?.string.flatMap(TuningDecision.Action.init(rawValue:)) else { return nil }
            return .auto(TuningDecision(
                action: action, lanesBefore: integer(line["lanes_before"]) ?? 0, lanesAfter: integer(line["lanes_after"]) ?? 0,
                requestSizeBefore: line["request_size_before"]?.uint ?? 0,
                requestSizeAfter: line["request_size_after"]?.uint ?? 0,
                baselineBytesPerSecond: line["baseline_rate_bps"]?.double,
                measuredBytesPerSecond: line["measured_rate_bps"]?.double, reason: reason))
        case "paused": return .paused(true)
        case "resumed": return .paused(false)
        default: return nil
        }
    }

    public static func duration(seconds: Double) -> Duration {
        .nanoseconds(Int64((seconds * 1e9).rounded()))
    }

    private static func milliseconds(_ value: JSONValue?) -> Duration? {
        value?.double.map { duration(seconds: $0 / 1000) }
    }

    private static func integer(_ value: JSONValue?) -> Int? {
        value?.int.flatMap { Int(exactly: $0) }
    }
}
