import NBDCopy
import Synchronization
import Telemetry

/// The destination of a copy that failed or stopped: lets it act on how far the copy got
/// (a file nbdtop created is cut to the completed prefix, so it never looks finished) and
/// says so, once, whichever path ends the copy first (the normal end or an exit at once).
final class IncompleteDestination: Sendable {
    private let destination: any CopyEndpoint
    private let settled = Atomic<Bool>(false)

    init(_ destination: any CopyEndpoint) {
        self.destination = destination
    }

    /// Hands `snapshot`'s completed prefix (0 without one) to the destination; returns the
    /// line that says what became of it, or nil when already settled, when the destination
    /// keeps nothing (`null:`), or when every byte arrived (only the flush is missing).
    func settle(_ snapshot: CopySnapshot?) -> String? {
        guard !settled.exchange(true, ordering: .acquiringAndReleasing), !destination.discardsWrites else { return nil }
        let prefixBytes = snapshot?.completedPrefix ?? 0
        if let total = snapshot?.bytesTotal, prefixBytes >= total { return nil }
        let share = Self.percent(prefixBytes, of: snapshot?.bytesTotal).map { " (\($0))" } ?? ""
        let stale = "bytes past \(prefixBytes) may hold old data"
        let opening = "destination \(destination.displayName) is incomplete"
        // A pipe cannot be cut or hold old data: the reader got the prefix, then nothing.
        if destination.isSequential { return "\(opening): it received the first \(prefixBytes) bytes\(share)" }
        switch destination.copyEndedIncomplete(completedPrefix: prefixBytes) {
        case .truncated:
            return "\(opening): it holds the first \(prefixBytes) bytes\(share); truncated to that"
        case .leftAsIs:
            return "\(opening): the first \(prefixBytes) bytes\(share) arrived; it is left as it is, so \(stale)"
        case .truncateFailed(let reason):
            return "\(opening): the first \(prefixBytes) bytes\(share) arrived; cannot truncate it to that (\(reason)), so \(stale)"
        }
    }

    /// How far a copy got by bytes done, for the line that says it failed or stopped:
    /// "12.0 MiB of 256.0 MiB (4.7%)".
    static func progress(_ snapshot: CopySnapshot) -> String {
        guard let total = snapshot.bytesTotal else { return Units.bytes(snapshot.bytesDone) }
        let share = percent(snapshot.bytesDone, of: total).map { " (\($0))" } ?? ""
        return "\(Units.bytes(snapshot.bytesDone)) of \(Units.bytes(total))\(share)"
    }

    /// "4.7%", or nil when the total is unknown or zero.
    private static func percent(_ bytes: UInt64, of total: UInt64?) -> String? {
        guard let total, total > 0 else { return nil }
        return "\(Units.oneDecimal(Double(bytes) / Double(total) * 100))%"
    }
}
