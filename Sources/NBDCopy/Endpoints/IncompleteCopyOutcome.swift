/// What a destination did with itself when a copy into it failed or stopped before the
/// whole image arrived (`CopyEndpoint.copyEndedIncomplete(completedPrefix:)`).
public enum IncompleteCopyOutcome: Sendable, Equatable {
    /// Cut to the completed prefix: nbdtop created it, so nothing past the prefix is worth
    /// keeping, and its size now shows how far the copy got.
    case truncated
    /// Left as it is (it existed before, a block device, a server): bytes past the
    /// completed prefix may hold old data.
    case leftAsIs
    /// nbdtop created it but could not cut it, for this reason; it is left as it is.
    case truncateFailed(String)
}
