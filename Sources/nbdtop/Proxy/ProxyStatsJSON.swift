import Control
import NBDCopy
import NBDProxy
import Telemetry

/// The proxy's `--stats-json` lines: the copy's contract (`StatsJSON`: `"v"`, `"event"`,
/// `"t"`, units in key names, the same per-connection figures) plus `"mode":"proxy"`, who
/// each client is, its figures by request kind, and the coverage map's fractions.
enum ProxyStatsJSON {
    /// `src` is where clients connect (the proxy's URI), `dst` the upstream, as `ls` shows
    /// them; `dst_tls` the upstream's TLS version and cipher, as a copy's.
    static func start(t: Double, uri: String, upstream: String, upstreamTLS: String?) -> String {
        StatsJSON.line("start", t: t, [("mode", .string("proxy")), ("src", .string(uri)), ("dst", .string(upstream)),
                                       ("dst_tls", upstreamTLS.map(JSONValue.string) ?? .null)])
    }

    static func sample(_ snapshot: ProxySnapshot) -> String {
        StatsJSON.line("sample", t: StatsJSON.seconds(snapshot.elapsed), [
            ("mode", .string("proxy")),
            ("bytes_done", .uint(snapshot.bytesRelayed)),
            ("rate_bps", .double(StatsJSON.rounded(snapshot.bytesPerSecond, 0))),
            ("clients", .int(Int64(snapshot.activeClients))),
            ("export_size", snapshot.coverage.map { .uint($0.exportSize) } ?? .null),
            ("coverage_read", .double(StatsJSON.rounded(snapshot.coverage?.fraction(written: false) ?? 0, 4))),
            ("coverage_written", .double(StatsJSON.rounded(snapshot.coverage?.fraction(written: true) ?? 0, 4))),
            ("conns", .array(snapshot.clients.map(connection))),
        ])
    }

    static func client(_ identity: ClientIdentity) -> JSONValue {
        switch identity {
        case .process(let pid, let uid, let command):
            return .object([("pid", .int(Int64(pid))), ("uid", .uint(UInt64(uid))), ("comm", command.map { .string($0) } ?? .null)])
        case .address(let host, let port):
            return .object([("address", .string(host)), ("port", .int(Int64(port)))])
        case .unknown:
            return .object([])
        }
    }

    /// A copy's connection entry with `side` `client`, the proxy's state, and the client's facts.
    static func connection(_ client: ClientSnapshot) -> JSONValue {
        guard case .object(var members) = StatsJSON.connection(client.connection) else { return .null }
        members = members.filter { !["side", "state", "reason"].contains($0.0) }
        members.insert(("side", .string("client")), at: 1)
        members.insert(("state", .string(client.state.rawValue)), at: 2)
        members += [
            ("client", ProxyStatsJSON.client(client.client)),
            ("read_bps", .double(StatsJSON.rounded(client.readBytesPerSecond, 0))),
            ("write_bps", .double(StatsJSON.rounded(client.writeBytesPerSecond, 0))),
            ("ops", .object(RequestKind.allCases.compactMap { kind in
                client.totalsByKind[kind].map { totals in
                    (kind.rawValue, .object([("requests", .uint(totals.requests)), ("bytes", .uint(totals.bytes)),
                                             ("errors", .uint(totals.errors)),
                                             ("p50_ms", totals.latencyP50.map { .double(StatsJSON.milliseconds($0)) } ?? .null),
                                             ("p99_ms", totals.latencyP99.map { .double(StatsJSON.milliseconds($0)) } ?? .null)]))
                }
            })),
            ("errors_by_errno", .object(client.errorsByErrno.sorted { $0.key < $1.key }.map { ($0.key, .int(Int64($0.value))) })),
        ]
        if let reason = client.reason { members.append(("reason", .string(reason))) }
        return .object(members)
    }

    static func event(_ event: ProxyEvent, t: Double) -> String {
        switch event {
        case .clientConnected(let id, let client):
            return StatsJSON.line("client_connected", t: t, [("id", .int(Int64(id))), ("client", Self.client(client))])
        case .clientLeft(let id, let client, let failed, let reason):
            return StatsJSON.line("client_left", t: t, [("id", .int(Int64(id))), ("client", Self.client(client)),
                                                        ("failed", .bool(failed)), ("reason", .string(reason))])
        case .clientRefused(let client, let reason):
            return StatsJSON.line("client_refused", t: t, [("client", Self.client(client)), ("reason", .string(reason))])
        case .stall(let id, let oldestAge, let held):
            return StatsJSON.line("stall", t: t, [("id", .int(Int64(id))), ("side", .string("client")),
                                                  ("oldest_ms", .double(StatsJSON.milliseconds(oldestAge))),
                                                  ("held", .int(Int64(held)))])
        case .slowRequest(let id, let kind, let offset, let length, let latency):
            return StatsJSON.line("slow_request", t: t, [("id", .int(Int64(id))), ("side", .string("client")),
                                                         ("op", .string(kind.rawValue)), ("offset", .uint(offset)),
                                                         ("length", .uint(length)),
                                                         ("latency_ms", .double(StatsJSON.milliseconds(latency)))])
        }
    }

    static func done(_ snapshot: ProxySnapshot, exitStatus: Int32) -> String {
        StatsJSON.line("done", t: StatsJSON.seconds(snapshot.elapsed), [
            ("mode", .string("proxy")),
            ("bytes_done", .uint(snapshot.bytesRelayed)),
            ("clients_total", .int(Int64(snapshot.clients.count))),
            ("elapsed_s", .double(StatsJSON.rounded(StatsJSON.seconds(snapshot.elapsed), 3))),
            ("exit", .int(Int64(exitStatus))),
        ])
    }

    /// One line for a person (stderr without `--stats-json` to it, and `--verbose`).
    static func humanLine(_ event: ProxyEvent) -> String? {
        switch event {
        case .clientConnected(let id, let client): return "client \(id) connected: \(client)"
        case .clientLeft(let id, let client, _, let reason): return "client \(id) (\(client)) left: \(reason)"
        case .clientRefused(let client, let reason): return "client \(client) refused: \(reason)"
        case .stall(let id, let oldest, let held): return "client \(id) stalled: oldest request \(oldest), \(held) held"
        case .slowRequest: return nil
        }
    }
}
