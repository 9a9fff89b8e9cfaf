import Testing

@testable import NBDCopy

/// Tests of `ExtentNormalizer`: answers in a server's own granularity become contiguous
/// extents on the copy's alignment, zero only where every byte is zero.
@Suite struct ExtentNormalizerTests {
    static func data(_ offset: UInt64, _ length: UInt64) -> ImageExtent { ImageExtent(offset: offset, length: length, isZero: false) }
    static func zero(_ offset: UInt64, _ length: UInt64) -> ImageExtent { ImageExtent(offset: offset, length: length, isZero: true) }

    static func normalize(_ extents: [ImageExtent], from start: UInt64 = 0, alignment: UInt64 = 4096,
                          imageEnd: UInt64 = 1 << 20) -> [ImageExtent] {
        ExtentNormalizer.normalize(extents, from: start, alignment: alignment, imageEnd: imageEnd)
    }

    @Test func anUnalignedZeroExtentShrinksToItsAlignedInterior() {
        let result = Self.normalize([Self.data(0, 1000), Self.zero(1000, 9000), Self.data(10_000, 6384)])
        #expect(result == [Self.data(0, 4096), Self.zero(4096, 4096), Self.data(8192, 8192)])
    }

    @Test(arguments: [UInt64(512), 4096, 65536])
    func boundariesSitOnTheAlignmentWhateverTheServersGranularity(alignment: UInt64) {
        // 512-byte granularity answers: runs of 3, 9, 1, 200 and 7 sectors.
        let lengths: [UInt64] = [3, 9, 1, 200, 7].map { $0 * 512 }
        var extents: [ImageExtent] = []
        var offset: UInt64 = 0
        for (index, length) in lengths.enumerated() {
            extents.append(ImageExtent(offset: offset, length: length, isZero: index % 2 == 1))
            offset += length
        }
        let result = Self.normalize(extents, alignment: alignment, imageEnd: 1 << 30)
        #expect(result.first?.offset == 0)
        for (extent, next) in zip(result, result.dropFirst()) {
            #expect(extent.end == next.offset, "contiguous")
            #expect(extent.isZero != next.isZero, "neighbours of one kind are merged")
        }
        for extent in result {
            #expect(extent.offset % alignment == 0 && extent.end % alignment == 0, "\(extent) on \(alignment)")
            if extent.isZero {
                #expect(extents.contains { $0.isZero && $0.offset <= extent.offset && extent.end <= $0.end }, "\(extent) zero in the answer")
            }
        }
        #expect(result.last.map(\.end) == offset - offset % alignment, "the answer is used up to its last aligned point")
    }

    @Test func aZeroExtentShorterThanABlockBecomesData() {
        let result = Self.normalize([Self.data(0, 1000), Self.zero(1000, 4000), Self.data(5000, 3192)])
        #expect(result == [Self.data(0, 8192)])
    }

    @Test func anAnswerEndingOffTheAlignmentIsCutBackToABlockBoundary() {
        #expect(Self.normalize([Self.data(0, 10_000)]) == [Self.data(0, 8192)])
        #expect(Self.normalize([Self.data(0, 4096), Self.zero(4096, 9000)]) == [Self.data(0, 4096), Self.zero(4096, 8192)])
    }

    @Test func anAnswerPastTheImageEndIsClippedAndAZeroTailStaysZero() {
        // The image ends off the alignment: the zero run reaches it.
        #expect(Self.normalize([Self.data(0, 4096), Self.zero(4096, 20_000)], imageEnd: 10_000)
            == [Self.data(0, 4096), Self.zero(4096, 5904)])
        #expect(Self.normalize([Self.zero(0, 20_000)], imageEnd: 10_000) == [Self.zero(0, 10_000)])
    }

    @Test func lessThanOneBlockDescribedCopiesOneBlockAsData() {
        #expect(Self.normalize([Self.zero(8192, 100)], from: 8192) == [Self.data(8192, 4096)])
        #expect(Self.normalize([], from: 8192) == [Self.data(8192, 4096)])
        // ...but never past the image end.
        #expect(Self.normalize([], from: 8192, imageEnd: 10_000) == [Self.data(8192, 1808)])
    }

    @Test func anAnswerIsUsedOnlyUpToItsFirstGap() {
        // Extents that do not start at the cursor, or skip a range, describe nothing there.
        #expect(Self.normalize([Self.zero(4096, 8192)]) == [Self.data(0, 4096)])
        #expect(Self.normalize([Self.data(0, 4096), Self.zero(8192, 8192)]) == [Self.data(0, 4096)])
        #expect(Self.normalize([Self.zero(0, 8192), Self.zero(8192, 0), Self.zero(8192, 8192)]) == [Self.zero(0, 8192)])
    }

    @Test func neighboursOfOneKindAreMerged() {
        let result = Self.normalize([Self.data(0, 4096), Self.data(4096, 4096), Self.zero(8192, 4096), Self.zero(12_288, 4096)])
        #expect(result == [Self.data(0, 8192), Self.zero(8192, 8192)])
    }
}
