import Telemetry

/// The plain-text summary to print on the normal screen after the dashboard closes:
/// totals, average rate, and one line per connection with its stall figures; one line per
/// lane when the destination is not NBD (`null:`, a file, a pipe), with the destination's
/// p50 write latency as a column, as the dashboard shows it.
public enum SummaryReport {
    /// The summary's lines, without colours or escape sequences; `flush`, when known, ends
    /// the first line.
    public static func lines(_ snapshot: CopySnapshot, flush: CopyOutcome.Flush? = nil) -> [String] {
        var lines: [String] = []
        let lanesUsed = Set(snapshot.connections.map(\.laneID)).count
        let total = snapshot.bytesTotal.map { " of " + Format.bytes($0) } ?? ""
        lines.append("copied \(Format.bytes(snapshot.bytesDone))\(total) in \(Format.clock(snapshot.elapsed)) "
            + "(\(Format.rate(snapshot.averageBytesPerSecond)) average); zero \(Format.bytes(snapshot.bytesZeroed)), "
            + "skipped \(Format.bytes(snapshot.bytesSkipped)); \(lanesUsed) lane\(lanesUsed == 1 ? "" : "s") used (at most \(snapshot.maximumLanes))"
            + (flush.map { "; " + $0.summary } ?? ""))
        let perLane = !snapshot.destinationIsNBD
        var header: [(String, Int)] = [("lane", 4), ("side", 4), ("state", 7), ("bytes", 10), ("p50", 7), ("p99", 7),
                                       ("stalls", 6), ("stalled", 8), ("held", 6), ("slow", 5), ("errors", 6), ("retries", 7)]
        if perLane { header.insert(("write", 7), at: 6) }
        lines.append(header.map { TextFitting.pad($0.0, to: $0.1, alignRight: $0.0 != "side" && $0.0 != "state") }.joined(separator: " "))
        let rows = snapshot.connectionsInTableOrder.filter { !perLane || $0.side == .source }
        for connection in rows {
            var cells: [(String, Int, Bool)] = [
                (String(connection.laneID), 4, true), (connection.side.rawValue, 4, false), (connection.state.rawValue, 7, false),
                (Format.bytes(connection.bytes, separator: ""), 10, true),
                (connection.latencyP50.map(Format.shortDuration) ?? "-", 7, true),
                (connection.latencyP99.map(Format.shortDuration) ?? "-", 7, true),
                (String(connection.stallEpisodes), 6, true),
                (connection.stallEpisodes > 0 ? Format.shortDuration(connection.stalledTime) : "-", 8, true),
                (String(connection.requestsHeldBehind), 6, true), (String(connection.slowRequests), 5, true),
                (String(connection.errors), 6, true), (String(connection.retries), 7, true),
            ]
            if perLane {
                let write = snapshot.connections.first { $0.laneID == connection.laneID && $0.side == .destination }?.latencyP50
                cells.insert((write.map(Format.shortDuration) ?? "-", 7, true), at: 6)
            }
            var line = cells.map { TextFitting.pad($0.0, to: $0.1, alignRight: $0.2) }.joined(separator: " ")
            if let reason = connection.failureReason { line += "  " + reason }
            lines.append(line)
        }
        return lines
    }

    /// The summary as one string, lines ending in newlines.
    public static func text(_ snapshot: CopySnapshot, flush: CopyOutcome.Flush? = nil) -> String {
        lines(snapshot, flush: flush).map { $0 + "\n" }.joined()
    }
}
