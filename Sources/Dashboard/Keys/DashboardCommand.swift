/// What the program must do to the copy after a key press; everything else a key does
/// (selection, freezing, help, themes, refresh rate) changes `DashboardState` only.
public enum DashboardCommand: Sendable, Equatable {
    /// Call `CopyEngine.addLane()`.
    case addLane
    /// Call `CopyEngine.dropLane(id:)`; nil drops the newest lane.
    case dropLane(laneID: Int?)
    /// Call `CopyEngine.resumeAutoLanes()`: lanes are tuned again after a `+` or `-`.
    case resumeAutoLanes
    /// Call `CopyEngine.setPaused(_:)`.
    case setPaused(Bool)
    /// Leave the dashboard; if the copy still runs, stop it cleanly (`CopyEngine.stop()`).
    case quit
    /// Attached to a copy in another process: leave the dashboard, the copy goes on.
    case detach
    /// Attached: stop the copy (`{"cmd":"stop"}`) and stay until it has ended.
    case stopCopy
    /// Write these settings to `nbdtop.conf`.
    case saveSettings(DashboardSettings)
}
