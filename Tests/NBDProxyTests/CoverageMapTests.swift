import NBDProxy
import Testing

@Suite struct CoverageMapTests {
    @Test func rangesMarkTheBlocksTheyTouch() {
        var map = CoverageMap(exportSize: 1 << 20)
        #expect(map.blockSize == 4096)
        #expect(map.blockCount == 256)
        map.record(offset: 0, length: 8192, written: false)
        map.record(offset: 4096, length: 1, written: false)  // already read: counted once
        map.record(offset: 1 << 19, length: 1 << 19, written: true)
        #expect(map.readBlockCount == 2)
        #expect(map.fraction(written: false) == 2.0 / 256)
        #expect(map.fraction(written: true) == 0.5)
        // Past the end and empty ranges change nothing.
        map.record(offset: 1 << 20, length: 4096, written: false)
        map.record(offset: 0, length: 0, written: true)
        #expect(map.readBlockCount == 2 && map.writtenBlockCount == 128)
    }

    /// A size and requests near 2^64, as a hostile server or client may send them: no
    /// overflow, and the last block is marked.
    @Test func sizesNearTheTopOfTheRangeDoNotOverflow() {
        var map = CoverageMap(exportSize: UInt64.max)
        #expect(map.blockCount <= CoverageMap.maximumBlocks)
        map.record(offset: UInt64.max - 10, length: UInt64.max, written: true)
        #expect(map.writtenBlockCount == 1)
    }

    @Test func aHugeExportKeepsTheMapSmall() {
        let map = CoverageMap(exportSize: 1 << 50)
        #expect(map.blockCount <= CoverageMap.maximumBlocks)
        #expect(map.blockSize * UInt64(map.blockCount) >= 1 << 50)
    }

    @Test func anUnalignedEndCounts() {
        var map = CoverageMap(exportSize: 10_000)
        map.record(offset: 9_999, length: 100, written: false)
        #expect(map.blockCount == 3)
        #expect(map.readBlockCount == 1)
    }
}
