import NBDCopy
import Telemetry

/// `-p/--progress`: one line on stderr, counting completed bytes; redrawn in place on a
/// terminal, one line per interval otherwise.
struct ProgressLine: ProgressDisplay {
    let output: OutputFile
    let inPlace: Bool

    init(output: OutputFile = .standardError) {
        self.output = output
        self.inPlace = output.isTerminal
    }

    static func text(_ snapshot: CopySnapshot) -> String {
        var parts: [String] = []
        if let total = snapshot.bytesTotal, total > 0 {
            let percent = Double(snapshot.bytesDone) / Double(total) * 100
            parts.append("\(Units.oneDecimal(percent))%")
            parts.append("\(Units.bytes(snapshot.bytesDone)) / \(Units.bytes(total))")
        } else {
            parts.append(Units.bytes(snapshot.bytesDone))
        }
        parts.append(Units.rate(snapshot.bytesPerSecond))
        parts.append("ETA " + (snapshot.eta.map(Units.clock) ?? "-"))
        parts.append("elapsed \(Units.clock(snapshot.elapsed))")
        parts.append("lanes \(snapshot.lanes)/\(snapshot.maximumLanes)")
        let stalled = snapshot.connections.filter(\.stalled).count
        if stalled > 0 { parts.append("\(stalled) stalled") }
        if snapshot.paused { parts.append("PAUSED") }
        return "nbdtop: " + parts.joined(separator: "  ")
    }

    /// Nothing is shown before the first sample.
    func start() {}

    func show(_ snapshot: CopySnapshot) {
        if inPlace {
            output.write("\r\u{1B}[K" + Self.text(snapshot))
        } else {
            output.writeLine(Self.text(snapshot))
        }
    }

    /// Shows the last figures, and ends the in-place line so later messages start on their
    /// own line.
    func finish(_ snapshot: CopySnapshot, succeeded: Bool) {
        show(snapshot)
        if inPlace { output.write("\n") }
    }
}
