import NBDCopy
import Telemetry

/// Shows a headless copy's progress (`-p`) while it runs: `nbdtop copy`'s progress line, or
/// the nbdcopy stand-in's progress bar or `N/100` lines.
protocol ProgressDisplay: Sendable {
    /// The copy starts: the endpoints are open.
    func start()
    /// A sample was taken.
    func show(_ snapshot: CopySnapshot)
    /// The copy ended, with the whole image copied (`succeeded`) or not.
    func finish(_ snapshot: CopySnapshot, succeeded: Bool)
}
