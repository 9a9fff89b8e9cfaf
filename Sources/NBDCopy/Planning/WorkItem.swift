/// A range of the image handed to one lane: copy it, or make it read as zero.
struct WorkItem: Sendable, Equatable {
    enum Kind: Sendable {
        /// Read from the source, write to the destination.
        case copy
        /// The source says this reads as zero: zero it on the destination.
        case zero
    }

    var offset: UInt64
    var length: UInt64
    var kind: Kind
    /// Failed attempts so far (retries are counted against `--retries`).
    var failures = 0

    var end: UInt64 { offset + length }

    /// Bytes this item holds in memory while in flight, for `--queue-size`: a copy holds its
    /// data; a zero request holds nothing (a 1 GiB WRITE_ZEROES must not stop a lane reading).
    var bufferedBytes: UInt64 { kind == .copy ? length : 0 }
}

/// A work item a lane finished, with what it counted toward progress, so that it can be
/// taken back exactly (`Planner.reopen`).
struct CompletedWork: Sendable, Equatable {
    var item: WorkItem
    var bytes: UInt64
    var zeroed: UInt64
    var skipped: UInt64
}
