import NBD

extension ExtentMap {
    /// Asks the export for its extents from start to end, one block-status request after
    /// another, on one connection.
    static func fetch(from uri: NBDURI) async throws -> ExtentMap {
        let connection = try await NBDConnection.connect(to: uri)
        do {
            let map = try await fetch(on: connection)
            await connection.disconnect()
            return map
        } catch {
            await connection.abort()
            throw error
        }
    }

    private static func fetch(on connection: NBDConnection) async throws -> ExtentMap {
        let info = connection.info
        guard info.canBlockStatus else {
            throw ExtentMapError("--map: server does not support metadata context \"\(NBDMetaContext.baseAllocation)\"")
        }
        var map = ExtentMap(exportSize: info.size)
        // The longest request a 32-bit length allows that keeps to the export's block size.
        let alignment = UInt64(max(info.minimumBlockSize, 1))
        let longest = UInt64(UInt32.max) / alignment * alignment
        while map.end < info.size {
            let length = UInt32(min(info.size - map.end, longest))
            let extents = try await connection.blockStatus(offset: map.end, length: length)
            let before = map.end
            for extent in extents { map.append(length: UInt64(extent.length), type: extent.flags) }
            guard map.end > before else {
                throw ExtentMapError("--map: server did not return any extents at offset \(before)")
            }
        }
        return map
    }
}

/// Why the map could not be made; the copy or the server is fine, the answer was not.
struct ExtentMapError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
