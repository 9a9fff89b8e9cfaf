import NBDCopy
import Telemetry

/// The whole percent of the image copied, as nbdcopy reports it: rounded down, 0 while
/// the size is unknown (a stream source), 100 only once the copy has succeeded.
enum NBDCopyProgress {
    static func percent(_ snapshot: CopySnapshot) -> Int {
        min(99, Int(fraction(snapshot) * 100))
    }

    static func fraction(_ snapshot: CopySnapshot) -> Double {
        guard let total = snapshot.bytesTotal, total > 0 else { return 0 }
        return min(1, Double(snapshot.bytesDone) / Double(total))
    }
}
