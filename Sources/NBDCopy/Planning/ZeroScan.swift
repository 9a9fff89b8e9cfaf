import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// Splits what a READ returned into data to write and ranges that are zero.
///
/// Holes the source reported are zero as they are. With `-S/--sparse`, data is also
/// scanned in blocks of that size on image-aligned boundaries, and blocks of zero bytes
/// (data or holes) become zero ranges, so the destination stays sparse; then every
/// boundary between segments is on that grid. Data is never copied: segments hold slices
/// of the reply's buffers (only the part of a hole that shares a block with data becomes
/// new zero bytes).
enum ZeroScan {
    enum Segment: Equatable {
        case data(offset: UInt64, pieces: [ByteBuffer])
        case zero(offset: UInt64, length: UInt64)

        var offset: UInt64 {
            switch self {
            case .data(let offset, _), .zero(let offset, _): return offset
            }
        }

        var length: UInt64 {
            switch self {
            case .data(_, let pieces): return pieces.reduce(0) { $0 + UInt64($1.readableBytes) }
            case .zero(_, let length): return length
            }
        }
    }

    /// Segments covering exactly what `pieces` cover, in offset order, adjacent ones of the
    /// same kind merged. `granularity` 0 means no scanning.
    static func segments(of pieces: [ReadPiece], granularity: UInt64) -> [Segment] {
        var builder = Builder()
        let sorted = pieces.sorted { offset(of: $0) < offset(of: $1) }
        guard granularity > 0 else {
            for piece in sorted {
                switch piece {
                case .zero(let offset, let length): builder.addZero(offset: offset, length: UInt64(length))
                case .data(let offset, let bytes): builder.addData(offset: offset, bytes)
                }
            }
            return builder.segments
        }
        // Two passes: first which grid blocks are zero, then cut the pieces at those
        // blocks. A reply arrives in pieces cut wherever the socket delivered bytes (and
        // holes come in the source's granularity), so a block often spans two pieces; it
        // must be judged whole. Judged piece by piece, a zero range and a WRITE would meet
        // inside the block, off the destination's block size.
        let zeroRanges = zeroBlocks(of: sorted, granularity: granularity)
        var next = 0
        for piece in sorted {
            let pieceStart = offset(of: piece)
            let pieceEnd = pieceStart + length(of: piece)
            var position = pieceStart
            while position < pieceEnd {
                while next < zeroRanges.count && zeroRanges[next].upperBound <= position { next += 1 }
                if next < zeroRanges.count && zeroRanges[next].lowerBound <= position {
                    let end = min(zeroRanges[next].upperBound, pieceEnd)
                    builder.addZero(offset: position, length: end - position)
                    position = end
                    continue
                }
                let end = next < zeroRanges.count ? min(zeroRanges[next].lowerBound, pieceEnd) : pieceEnd
                let count = Int(end - position)
                switch piece {
                case .data(_, let bytes):
                    builder.addData(offset: position, bytes.getSlice(at: bytes.readerIndex + Int(position - pieceStart), length: count)!)
                case .zero:
                    // A hole sharing a block with data: written as zero bytes with it (less
                    // than a block at each of the hole's ends).
                    builder.addData(offset: position, ByteBuffer(repeating: 0, count: count))
                }
                position = end
            }
        }
        return builder.segments
    }

    /// The ranges made of grid blocks (cut by the read's edges) in which every byte is
    /// zero, merged, in offset order.
    private static func zeroBlocks(of sorted: [ReadPiece], granularity: UInt64) -> [Range<UInt64>] {
        var ranges: [Range<UInt64>] = []
        // The block being judged: where it starts, how far the pieces have covered it,
        // and whether all of that is zero.
        var block: (start: UInt64, end: UInt64, isZero: Bool)?
        func finishBlock() {
            guard let finished = block else { return }
            block = nil
            guard finished.isZero else { return }
            if let last = ranges.last, last.upperBound == finished.start {
                ranges[ranges.count - 1] = last.lowerBound..<finished.end
            } else {
                ranges.append(finished.start..<finished.end)
            }
        }
        for piece in sorted {
            let pieceStart = offset(of: piece)
            let pieceEnd = pieceStart + length(of: piece)
            var position = pieceStart
            while position < pieceEnd {
                var end = min((position / granularity + 1) * granularity, pieceEnd)
                let isZero: Bool
                switch piece {
                case .zero:
                    // Whole blocks inside a hole are zero without looking at each.
                    let lastBoundary = pieceEnd - pieceEnd % granularity
                    if position % granularity == 0 && lastBoundary > position { end = lastBoundary }
                    isZero = true
                case .data(_, let bytes):
                    isZero = bytes.withUnsafeReadableBytes { raw in
                        isAllZero(UnsafeRawBufferPointer(rebasing: raw[Int(position - pieceStart)..<Int(end - pieceStart)]))
                    }
                }
                if let current = block, current.end == position {
                    block = (current.start, end, current.isZero && isZero)
                } else {
                    finishBlock() // a gap between pieces ends the block before it
                    block = (position, end, isZero)
                }
                position = end
                if position % granularity == 0 { finishBlock() }
            }
        }
        finishBlock()
        return ranges
    }

    private static func offset(of piece: ReadPiece) -> UInt64 {
        switch piece {
        case .data(let offset, _), .zero(let offset, _): return offset
        }
    }

    private static func length(of piece: ReadPiece) -> UInt64 {
        switch piece {
        case .data(_, let bytes): return UInt64(bytes.readableBytes)
        case .zero(_, let length): return UInt64(length)
        }
    }

    /// Whether every byte is zero: the first byte, then memcmp of the bytes against
    /// themselves shifted by one, which libc does at memory speed.
    static func isAllZero(_ raw: UnsafeRawBufferPointer) -> Bool {
        guard let base = raw.baseAddress, raw.count > 0 else { return true }
        guard raw[0] == 0 else { return false }
        return memcmp(base, base + 1, raw.count - 1) == 0
    }

    /// Collects segments, merging each new range into the last when kind and end meet.
    private struct Builder {
        var segments: [Segment] = []
        /// Where the last segment ends.
        private var end: UInt64 = 0

        mutating func addZero(offset: UInt64, length: UInt64) {
            if case .zero(let lastOffset, let lastLength)? = segments.last, end == offset {
                segments[segments.count - 1] = .zero(offset: lastOffset, length: lastLength + length)
            } else {
                segments.append(.zero(offset: offset, length: length))
            }
            end = offset + length
        }

        mutating func addData(offset: UInt64, _ bytes: ByteBuffer) {
            if case .data(let lastOffset, var pieces)? = segments.last, end == offset {
                segments[segments.count - 1] = .zero(offset: 0, length: 0) // drop the reference before appending
                pieces.append(bytes)
                segments[segments.count - 1] = .data(offset: lastOffset, pieces: pieces)
            } else {
                segments.append(.data(offset: offset, pieces: [bytes]))
            }
            end = offset + UInt64(bytes.readableBytes)
        }
    }
}
