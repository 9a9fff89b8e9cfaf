/// Which parts of an export clients have read and which they have written, in blocks.
///
/// A block counts as read (or written) when a successful request touched it. Blocks are
/// at least 4 KiB and there are at most `maximumBlocks` of them, so the map takes at most
/// 128 KiB per kind whatever the export's size.
public struct CoverageMap: Sendable, Equatable {
    public static let maximumBlocks = 1 << 20
    public static let minimumBlockSize: UInt64 = 4096

    public let exportSize: UInt64
    public let blockSize: UInt64
    private var readBlocks: [UInt64]
    private var writtenBlocks: [UInt64]
    /// Blocks set in each map.
    public private(set) var readBlockCount = 0
    public private(set) var writtenBlockCount = 0

    public init(exportSize: UInt64) {
        self.exportSize = exportSize
        var blockSize = Self.minimumBlockSize
        while exportSize / blockSize >= UInt64(Self.maximumBlocks) { blockSize *= 2 }
        self.blockSize = blockSize
        let blocks = Self.blocks(exportSize, of: blockSize)
        readBlocks = Array(repeating: 0, count: (blocks + 63) / 64)
        writtenBlocks = readBlocks
    }

    /// Blocks in the export.
    public var blockCount: Int { Self.blocks(exportSize, of: blockSize) }

    /// Blocks of `blockSize` that cover `size` bytes, without overflow for a size near
    /// 2^64 (a size a hostile server may announce).
    private static func blocks(_ size: UInt64, of blockSize: UInt64) -> Int {
        Int(size / blockSize + (size % blockSize == 0 ? 0 : 1))
    }

    /// Marks the blocks `offset..<offset+length` touches as read or written.
    public mutating func record(offset: UInt64, length: UInt64, written: Bool) {
        guard length > 0, offset < exportSize else { return }
        let first = Int(offset / blockSize)
        // The last byte touched, without overflow for a request near the top of 2^64.
        let last = Int(min(exportSize - 1, offset + min(length - 1, UInt64.max - offset)) / blockSize)
        for block in first...last {
            let word = block / 64, bit = UInt64(1) << UInt64(block % 64)
            if written {
                if writtenBlocks[word] & bit == 0 { writtenBlocks[word] |= bit; writtenBlockCount += 1 }
            } else {
                if readBlocks[word] & bit == 0 { readBlocks[word] |= bit; readBlockCount += 1 }
            }
        }
    }

    /// The fraction of the export read (or written) so far, 0 to 1.
    public func fraction(written: Bool) -> Double {
        let blocks = blockCount
        guard blocks > 0 else { return 0 }
        return Double(written ? writtenBlockCount : readBlockCount) / Double(blocks)
    }
}
