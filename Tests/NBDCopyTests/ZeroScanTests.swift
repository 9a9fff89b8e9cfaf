import NIOCore
import Testing

@testable import NBDCopy

/// Tests of `ZeroScan`: what a READ returned, split into data to write and zero ranges,
/// with every boundary on the scan's block grid.
@Suite struct ZeroScanTests {
    /// A segment without its bytes, for comparing.
    enum Shape: Equatable {
        case data(UInt64, UInt64)
        case zero(UInt64, UInt64)
    }

    static func shapes(_ segments: [ZeroScan.Segment]) -> [Shape] {
        segments.map { segment in
            switch segment {
            case .data: return .data(segment.offset, segment.length)
            case .zero: return .zero(segment.offset, segment.length)
            }
        }
    }

    static func data(_ offset: UInt64, _ bytes: [UInt8]) -> ReadPiece { .data(offset: offset, bytes: ByteBuffer(bytes: bytes)) }
    static func hole(_ offset: UInt64, _ length: UInt32) -> ReadPiece { .zero(offset: offset, length: length) }
    static func zeroes(_ count: Int) -> [UInt8] { [UInt8](repeating: 0, count: count) }
    static func ones(_ count: Int) -> [UInt8] { [UInt8](repeating: 1, count: count) }

    @Test func holesAndZeroBlocksMergeIntoOneZeroSegment() {
        let pieces = [Self.data(0, Self.ones(4096)), Self.data(4096, Self.zeroes(4096)), Self.hole(8192, 4096),
                      Self.data(12_288, Self.ones(4096))]
        #expect(Self.shapes(ZeroScan.segments(of: pieces, granularity: 4096))
            == [.data(0, 4096), .zero(4096, 8192), .data(12_288, 4096)])
    }

    @Test func dataIsScannedOnImageAlignedBlocks() {
        // The read starts off the 4 KiB grid: its first block is the part up to 4096.
        let bytes = Self.zeroes(3072) + Self.ones(4096) + Self.zeroes(4096)
        #expect(Self.shapes(ZeroScan.segments(of: [Self.data(1024, bytes)], granularity: 4096))
            == [.zero(1024, 3072), .data(4096, 4096), .zero(8192, 4096)])
    }

    @Test func aBlockWithOneNonZeroByteIsData() {
        var bytes = Self.zeroes(8192)
        bytes[8191] = 0x80
        #expect(Self.shapes(ZeroScan.segments(of: [Self.data(0, bytes)], granularity: 4096)) == [.zero(0, 4096), .data(4096, 4096)])
    }

    @Test func granularityZeroScansNothing() {
        let pieces = [Self.data(0, Self.zeroes(4096)), Self.hole(4096, 4096)]
        #expect(Self.shapes(ZeroScan.segments(of: pieces, granularity: 0)) == [.data(0, 4096), .zero(4096, 4096)])
    }

    @Test func piecesOutOfOrderComeOutInOffsetOrder() {
        let pieces = [Self.data(8192, Self.ones(4096)), Self.hole(4096, 4096), Self.data(0, Self.ones(4096))]
        #expect(Self.shapes(ZeroScan.segments(of: pieces, granularity: 4096)) == [.data(0, 4096), .zero(4096, 4096), .data(8192, 4096)])
    }

    @Test func dataSegmentsAreSlicesOfTheReadBuffer() {
        let read = ByteBuffer(bytes: Self.ones(4096) + Self.zeroes(4096) + Self.ones(4096))
        let segments = ZeroScan.segments(of: [.data(offset: 0, bytes: read)], granularity: 4096)
        let readBase = read.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
        var bases: [UInt] = []
        for case .data(_, let pieces) in segments {
            for piece in pieces { bases.append(piece.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }) }
        }
        #expect(bases == [readBase, readBase + 8192], "data is never copied")
    }

    // MARK: Blocks cut by a piece's edge

    // A READ reply arrives in pieces cut wherever the socket delivered bytes, and holes sit
    // in the source's granularity; a block of the scan's grid must be judged whole, or a
    // zero range and a WRITE meet inside it, off the destination's block size.

    @Test func aBlockCutByAPieceEdgeIsJudgedWhole() {
        let pieces = [Self.data(0, Self.zeroes(2048)), Self.data(2048, Self.ones(2048)),
                      Self.data(4096, Self.zeroes(1904)), Self.data(6000, Self.zeroes(2192))]
        #expect(Self.shapes(ZeroScan.segments(of: pieces, granularity: 4096)) == [.data(0, 4096), .zero(4096, 4096)])
    }

    @Test func aHoleSharingABlockWithDataIsWrittenAsZeroBytes() {
        let pieces = [Self.hole(0, 6144), Self.data(6144, Self.ones(2048))]
        let segments = ZeroScan.segments(of: pieces, granularity: 4096)
        #expect(Self.shapes(segments) == [.zero(0, 4096), .data(4096, 4096)])
        let writesZeroBytesForTheHole = Self.bytes(of: segments.last!) == Self.zeroes(2048) + Self.ones(2048)
        #expect(writesZeroBytesForTheHole, "the hole's part of the block is written as zero bytes")
    }

    /// The bytes a data segment writes; nil for a zero segment.
    static func bytes(of segment: ZeroScan.Segment) -> [UInt8]? {
        guard case .data(_, let pieces) = segment else { return nil }
        return pieces.flatMap { Array($0.readableBytesView) }
    }

    // MARK: Generated reads

    @Test(arguments: 1...40)
    func segmentsDescribeTheReadExactlyOnTheGrid(seed: Int) {
        var random = SplitMix64(seed: UInt64(seed))
        let granularity = random.pick([UInt64(512), 4096, 65536])
        let start = 512 * random.next(in: 0...300)
        // The image: runs of zero and non-zero bytes of any length.
        var image: [UInt8] = []
        while image.count < Int(random.next(in: 1...(6 * granularity))) {
            let run = Int(random.next(in: 1...(2 * granularity)))
            image += random.next(in: 0...1) == 0 ? Self.zeroes(run) : Self.ones(run)
        }
        // The reply: cut anywhere; zero pieces sometimes arrive as holes.
        var pieces: [ReadPiece] = []
        var position = 0
        while position < image.count {
            let end = min(image.count, position + Int(random.next(in: 1...granularity)))
            let slice = Array(image[position..<end])
            let offset = start + UInt64(position)
            if slice.allSatisfy({ $0 == 0 }) && random.next(in: 0...1) == 0 {
                pieces.append(Self.hole(offset, UInt32(slice.count)))
            } else {
                pieces.append(Self.data(offset, slice))
            }
            position = end
        }
        let readEnd = start + UInt64(image.count)
        let segments = ZeroScan.segments(of: pieces, granularity: granularity)

        var rebuilt: [UInt8] = []
        for (segment, next) in zip(segments, segments.dropFirst()) {
            #expect(segment.offset + segment.length == next.offset, "contiguous")
            #expect(next.offset % granularity == 0, "boundary at \(next.offset) on the \(granularity)-byte grid")
            #expect((Self.bytes(of: segment) == nil) != (Self.bytes(of: next) == nil), "neighbours of one kind are merged")
        }
        for segment in segments {
            let bytes = Self.bytes(of: segment) ?? Self.zeroes(Int(segment.length))
            rebuilt += bytes
            guard Self.bytes(of: segment) != nil else { continue }
            // Data only where a block holds a non-zero byte: every grid block of a data
            // segment (cut by the read's edges) has one.
            var blockStart = segment.offset
            while blockStart < segment.offset + segment.length {
                let blockEnd = min((blockStart / granularity + 1) * granularity, segment.offset + segment.length)
                let block = bytes[Int(blockStart - segment.offset)..<Int(blockEnd - segment.offset)]
                #expect(block.contains { $0 != 0 }, "zero block [\(blockStart), \(blockEnd)) written as data")
                blockStart = blockEnd
            }
        }
        #expect(segments.first?.offset == start)
        #expect(segments.last.map { $0.offset + $0.length } == readEnd)
        let holdsTheImage = rebuilt == image
        #expect(holdsTheImage, "the segments hold exactly the bytes read")
    }

    @Test func isAllZeroLooksAtEveryByte() {
        func check(_ bytes: [UInt8]) -> Bool { bytes.withUnsafeBytes { ZeroScan.isAllZero($0) } }
        #expect(check([]))
        #expect(check([0]))
        #expect(!check([1]))
        #expect(check(Self.zeroes(4096)))
        #expect(!check(Self.zeroes(4095) + [1]))
        #expect(!check([1] + Self.zeroes(4095)))
    }
}
