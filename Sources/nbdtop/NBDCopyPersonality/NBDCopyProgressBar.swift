import NBDCopy
import Synchronization
import Telemetry

/// `-p`: nbdcopy's progress bar on stderr, a spinner, the percent and 40 cells, redrawn in
/// place (`\r`) and ended with a full bar and a newline when the copy succeeds.
///
/// nbdcopy's bar moves as it hands out work; this one counts bytes the destination
/// acknowledged, like the rest of nbdtop.
final class NBDCopyProgressBar: ProgressDisplay {
    /// The spinner turns by one on every redraw, so a copy that makes no progress still
    /// shows it is alive.
    static let spinner: [String] = ["▝", "▐", "▗", "▃", "▖", "▍", "▘", "▀"]
    static let cells = 40

    private let output: OutputFile
    private let turns = Mutex(0)

    init(output: OutputFile = .standardError) {
        self.output = output
    }

    /// One frame: `▗  12% [*****-----…]`, then `\r`.
    static func frame(percent: Int, fraction: Double, turn: Int) -> String {
        let filled = min(cells, Int((fraction * Double(cells)).rounded(.up)))
        let padded = String(repeating: " ", count: max(0, 3 - String(percent).count)) + String(percent)
        let bar = String(repeating: "*", count: filled) + String(repeating: "-", count: cells - filled)
        return "\(spinner[turn % spinner.count]) \(padded)% [\(bar)]\r"
    }

    static let complete = "█ 100% [" + String(repeating: "*", count: cells) + "]\n"

    func start() {
        output.write(Self.frame(percent: 0, fraction: 0, turn: nextTurn()))
    }

    func show(_ snapshot: CopySnapshot) {
        output.write(Self.frame(percent: NBDCopyProgress.percent(snapshot), fraction: NBDCopyProgress.fraction(snapshot),
                                turn: nextTurn()))
    }

    /// A failed copy leaves its last frame, on a line of its own so the message below it
    /// does not overwrite it.
    func finish(_ snapshot: CopySnapshot, succeeded: Bool) {
        output.write(succeeded ? Self.complete : "\n")
    }

    private func nextTurn() -> Int {
        turns.withLock { turn in
            defer { turn += 1 }
            return turn
        }
    }
}
