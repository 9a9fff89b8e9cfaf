import DequeModule
import Synchronization

/// Counts the copy's destination checkpoints (flushes while it runs, `--checkpoint`).
///
/// A lane stamps each item it completes with the generation current at that moment. The
/// engine moves to the next generation *before* it sends a checkpoint FLUSH, so every item
/// stamped with an earlier generation was acknowledged before that FLUSH was sent, and is
/// durable once the FLUSH is acknowledged (on a multi-conn export a FLUSH on one connection
/// covers writes acknowledged on every connection).
final class CheckpointGeneration: Sendable {
    private let value = Atomic<UInt64>(0)

    var current: UInt64 { value.load(ordering: .acquiring) }

    /// Starts a new generation; returns it (what the coming FLUSH covers is everything before).
    func advance() -> UInt64 {
        value.add(1, ordering: .acquiringAndReleasing).newValue
    }
}

/// The work one lane completed on its destination connection since the last checkpoint
/// that covers it: what must be copied again if that connection breaks, because the
/// server may have acknowledged writes that never reached storage.
struct UnflushedWrites {
    private var entries = Deque<(generation: UInt64, work: CompletedWork)>()

    var isEmpty: Bool { entries.isEmpty }

    mutating func record(_ work: CompletedWork, generation: UInt64) {
        entries.append((generation, work))
    }

    /// A FLUSH sent in `generation` was acknowledged: everything stamped before is durable.
    mutating func checkpointReached(_ generation: UInt64) {
        while let first = entries.first, first.generation < generation {
            entries.removeFirst()
        }
    }

    /// Everything not known durable, to copy again; leaves nothing behind.
    mutating func takeAll() -> [CompletedWork] {
        defer { entries.removeAll() }
        return entries.map(\.work)
    }
}
