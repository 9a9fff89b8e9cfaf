
/// The JSON-lines contract of `--stats-json`: one object per line, every line with `"v":1`,
/// `"event"` and `"t"` (seconds since start); units are in key names. Every event and key
/// is documented in docs/telemetry.md and checked against docs/stats-json.schema.json.
public enum StatsJSON {
    /// The `"v"` of every line: raised when a key changes meaning or goes away (new keys
    /// and events do not raise it; readers ignore what they do not know).
    public static let schemaVersion: Int64 = 1

    public static func line(_ event: String, t seconds: Double, _ members: [(String, JSONValue)]) -> String {
        JSONValue.object([("v", .int(schemaVersion)), ("event", .string(event)), ("t", .double(rounded(seconds, 3)))] + members).compact
    }

    /// `destinationIsNBD`: the destination has NBD connections of its own (not `null:`, a
    /// file or a pipe), so the dashboard shows them as rows.
    public static func start(t: Double, source: String, destination: String, destinationIsNBD: Bool, size: UInt64?, lanes: Int,
                      maximumLanes: Int, laneLimitReason: String, requestSize: UInt64,
                      sourceTLS: String? = nil, destinationTLS: String? = nil) -> String {
        line("start", t: t, [
            ("src", .string(source)), ("dst", .string(destination)), ("dst_nbd", .bool(destinationIsNBD)),
            ("bytes_total", size.map { .uint($0) } ?? .null),
            ("lanes", .int(Int64(lanes))), ("max_lanes", .int(Int64(maximumLanes))),
            ("max_lanes_reason", .string(laneLimitReason)), ("request_size_bytes", .uint(requestSize)),
            ("src_tls", sourceTLS.map(JSONValue.string) ?? .null), ("dst_tls", destinationTLS.map(JSONValue.string) ?? .null),
        ])
    }

    public static func sample(_ snapshot: CopySnapshot) -> String {
        line("sample", t: seconds(snapshot.elapsed), [
            ("bytes_done", .uint(snapshot.bytesDone)),
            ("bytes_total", snapshot.bytesTotal.map { .uint($0) } ?? .null),
            ("bytes_zero", .uint(snapshot.bytesZeroed + snapshot.bytesSkipped)),
            ("bytes_skipped", .uint(snapshot.bytesSkipped)),
            ("rate_bps", .double(rounded(snapshot.bytesPerSecond, 0))),
            ("avg_rate_bps", .double(rounded(snapshot.averageBytesPerSecond, 0))),
            ("eta_s", snapshot.eta.map { .double(rounded(seconds($0), 1)) } ?? .null),
            ("lanes", .int(Int64(snapshot.lanes))),
            ("paused", .bool(snapshot.paused)),
            ("bottleneck", snapshot.bottleneck.map(bottleneck) ?? .null),
        ] + tuning(snapshot.tuning) + [
            ("conns", .array(snapshot.connections.map(connection))),
        ])
    }

    public static func bottleneck(_ bottleneck: Bottleneck) -> JSONValue {
        .object([("kind", .string(bottleneck.kind.rawValue)), ("detail", .string(bottleneck.detail))])
    }

    /// How lanes and the request size are chosen now, and the tuner's last decision.
    public static func tuning(_ status: TuningStatus?) -> [(String, JSONValue)] {
        guard let status else { return [] }
        return [
            ("lanes_mode", .string(status.laneMode.rawValue)),
            ("request_size_mode", .string(status.requestSizeIsAuto ? "auto" : "fixed")),
            ("request_size_bytes", .uint(status.requestSize)),
            ("last_auto", status.lastDecision.map { .string($0) } ?? .null),
        ]
    }

    public static func connection(_ connection: ConnectionSnapshot) -> JSONValue {
        var members: [(String, JSONValue)] = [
            ("id", .int(Int64(connection.laneID))),
            ("side", .string(connection.side.rawValue)),
            ("state", .string(connection.state.rawValue)),
            ("inflight", .int(Int64(connection.inFlight))),
            ("inflight_bytes", .uint(connection.inFlightBytes)),
            ("bytes", .uint(connection.bytes)),
            ("rate_bps", .double(rounded(connection.bytesPerSecond, 0))),
            ("p50_ms", connection.latencyP50.map { .double(milliseconds($0)) } ?? .null),
            ("p99_ms", connection.latencyP99.map { .double(milliseconds($0)) } ?? .null),
            ("oldest_ms", connection.oldestInFlight.map { .double(milliseconds($0)) } ?? .null),
            ("stalled", .bool(connection.stalled)),
            ("stall_episodes", .int(Int64(connection.stallEpisodes))),
            ("stall_ms", .double(milliseconds(connection.stalledTime))),
            ("stall_threshold_ms", connection.stallThreshold.map { .double(milliseconds($0)) } ?? .null),
            ("held", .int(Int64(connection.held))),
            ("held_total", .int(Int64(connection.requestsHeldBehind))),
            ("slow_requests", .int(Int64(connection.slowRequests))),
            ("slow_threshold_ms", connection.slowThreshold.map { .double(milliseconds($0)) } ?? .null),
            ("errors", .int(Int64(connection.errors))),
            ("retries", .int(Int64(connection.retries))),
            ("reconnects", .int(Int64(connection.reconnects))),
            ("reconnect_attempt", .int(Int64(connection.reconnectAttempt))),
        ]
        if let reason = connection.failureReason { members.append(("reason", .string(reason))) }
        return .object(members)
    }

    public static func event(_ event: CopyEvent, t: Double) -> String {
        switch event {
        case .laneAdded(let id):
            return line("lane_added", t: t, [("id", .int(Int64(id)))])
        case .laneDropped(let id):
            return line("lane_dropped", t: t, [("id", .int(Int64(id)))])
        case .laneFailed(let id, let reason):
            return line("lane_failed", t: t, [("id", .int(Int64(id))), ("reason", .string(reason))])
        case .laneRefused(let reason):
            return line("lane_refused", t: t, [("reason", .string(reason))])
        case .stall(let id, let side, let oldest, let held):
            return line("stall", t: t, [("id", .int(Int64(id))), ("side", .string(side.rawValue)),
                                        ("oldest_ms", .double(milliseconds(oldest))), ("held", .int(Int64(held)))])
        case .slowRequest(let id, let side, let operation, let offset, let length, let latency):
            return line("slow_request", t: t, [("id", .int(Int64(id))), ("side", .string(side.rawValue)),
                                               ("op", .string(operation.rawValue)), ("offset", .uint(offset)),
                                               ("length", .uint(length)), ("latency_ms", .double(milliseconds(latency)))])
        case .retry(let id, let side, let offset, let length, let attempt, let error):
            return line("retry", t: t, [("id", .int(Int64(id))), ("side", .string(side.rawValue)),
                                        ("offset", .uint(offset)), ("length", .uint(length)),
                                        ("attempt", .int(Int64(attempt))), ("error", .string(error))])
        case .laneReconnecting(let id, let side, let attempt, let error):
            return line("lane_reconnecting", t: t, [("id", .int(Int64(id))), ("side", .string(side.rawValue)),
                                                    ("attempt", .int(Int64(attempt))), ("error", .string(error))])
        case .laneReconnected(let id, let side):
            return line("lane_reconnected", t: t, [("id", .int(Int64(id))), ("side", .string(side.rawValue))])
        case .paused(let paused):
            return line(paused ? "paused" : "resumed", t: t, [])
        case .auto(let decision):
            return line("auto", t: t, [
                ("action", .string(decision.action.rawValue)),
                ("lanes_before", .int(Int64(decision.lanesBefore))), ("lanes_after", .int(Int64(decision.lanesAfter))),
                ("request_size_before", .uint(decision.requestSizeBefore)),
                ("request_size_after", .uint(decision.requestSizeAfter)),
                ("baseline_rate_bps", decision.baselineBytesPerSecond.map { .double(rounded($0, 0)) } ?? .null),
                ("measured_rate_bps", decision.measuredBytesPerSecond.map { .double(rounded($0, 0)) } ?? .null),
                ("reason", .string(decision.reason)),
            ])
        }
    }

    /// `flush`: what became of the final flush (`acknowledged`, `notRequested`, `unsupported`,
    /// `notReached`, `failed`); `flushed` is true only for `acknowledged`.
    public static func done(_ snapshot: CopySnapshot?, t: Double, exitStatus: Int32, flush: CopyOutcome.Flush = .notReached) -> String {
        line("done", t: t, [
            ("bytes_done", .uint(snapshot?.bytesDone ?? 0)),
            ("bytes_total", snapshot?.bytesTotal.map { .uint($0) } ?? .null),
            ("bytes_zero", .uint((snapshot?.bytesZeroed ?? 0) + (snapshot?.bytesSkipped ?? 0))),
            ("elapsed_s", .double(rounded(t, 3))),
            ("flushed", .bool(flush == .acknowledged)),
            ("flush", .string(flush.rawValue)),
            ("exit", .int(Int64(exitStatus))),
        ])
    }

    public static func error(_ message: String, t: Double) -> String {
        line("error", t: t, [("message", .string(message))])
    }

    public static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    public static func milliseconds(_ duration: Duration) -> Double { rounded(seconds(duration) * 1000, 3) }

    public static func rounded(_ value: Double, _ places: Int) -> Double {
        var scale = 1.0
        for _ in 0..<places { scale *= 10 }
        return (value * scale).rounded() / scale
    }
}

// MARK: The control socket and result files

extension StatsJSON {
    /// Each connection's rate for each of the last seconds (oldest first, at most 60), for
    /// the sparklines of a client that attaches late.
    public static func history(_ snapshot: CopySnapshot) -> JSONValue {
        .array(snapshot.connections.map { connection in
            .object([("id", .int(Int64(connection.laneID))), ("side", .string(connection.side.rawValue)),
                     ("rate_bps", .array(connection.rateHistory.map { .double(rounded($0, 0)) }))])
        })
    }

    /// What a copy leaves in `PID.result.json` when it ends: the `done` figures, the start
    /// facts, wall-clock start and end (seconds since the epoch) and every connection's
    /// last figures, stalls included.
    public static func result(done: String, start: String, snapshot: CopySnapshot?, pid: Int32, started: Double,
                       ended: Double) -> JSONValue {
        var members: [(String, JSONValue)] = [("v", .int(schemaVersion)), ("event", .string("result")), ("pid", .int(Int64(pid)))]
        for key in ["src", "dst"] {
            members.append((key, (try? JSONValue.parse(start))?[key] ?? .null))
        }
        if case .object(let doneMembers)? = try? JSONValue.parse(done) {
            members += doneMembers.filter { !["v", "event", "t"].contains($0.0) }
        }
        let lanes = Set(snapshot?.connections.map(\.laneID) ?? []).count
        members += [("lanes", .int(Int64(lanes))),
                    ("started", .double(rounded(started, 3))), ("ended", .double(rounded(ended, 3))),
                    ("conns", .array(snapshot?.connections.map(connection) ?? []))]
        return .object(members)
    }
}
