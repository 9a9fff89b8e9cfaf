import Synchronization

/// The proxy's coverage map, shared by the client connections on every event loop.
///
/// The map is for the export the first client opened; a client of an export of another
/// size is not drawn on it.
final class CoverageRecorder: Sendable {
    /// Protected by its own lock; each record is a few word operations.
    private let map = Mutex<CoverageMap?>(nil)

    /// Makes the map when the first client opened its export.
    func prepare(exportSize: UInt64) {
        map.withLock { map in
            if map == nil { map = CoverageMap(exportSize: exportSize) }
        }
    }

    func record(exportSize: UInt64, offset: UInt64, length: UInt64, written: Bool) {
        map.withLock { map in
            guard map?.exportSize == exportSize else { return }
            map?.record(offset: offset, length: length, written: written)
        }
    }

    /// A copy of the map, nil before any client opened an export.
    var snapshot: CoverageMap? { map.withLock { $0 } }
}
