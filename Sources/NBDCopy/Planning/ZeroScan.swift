import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// Splits what a READ returned into data to write and ranges that are zero.
///
/// Holes the source reported are zero as they are. With `-S/--sparse`, data is also
/// scanned in blocks of that size on image-aligned boundaries, and blocks of zero bytes
/// become zero ranges, so the destination stays sparse. Data is never copied: segments
/// hold slices of the reply's buffers.
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
        for piece in sorted {
            switch piece {
            case .zero(let offset, let length):
                builder.addZero(offset: offset, length: UInt64(length))
            case .data(let offset, let bytes):
                guard granularity > 0 else {
                    builder.addData(offset: offset, bytes)
                    continue
                }
                scan(bytes, at: offset, granularity: granularity, into: &builder)
            }
        }
        return builder.segments
    }

    private static func offset(of piece: ReadPiece) -> UInt64 {
        switch piece {
        case .data(let offset, _), .zero(let offset, _): return offset
        }
    }

    /// Classifies each granularity-aligned block of `bytes` and adds one segment per run
    /// of blocks of the same kind. A block cut by the piece's edge is judged on the part
    /// this piece holds, which is exact once merged with its neighbour.
    private static func scan(_ bytes: ByteBuffer, at offset: UInt64, granularity: UInt64, into builder: inout Builder) {
        var runs: [(start: Int, length: Int, isZero: Bool)] = []
        bytes.withUnsafeReadableBytes { raw in
            var position = 0
            while position < raw.count {
                let imageOffset = offset + UInt64(position)
                let blockEnd = (imageOffset / granularity + 1) * granularity
                let length = Int(min(UInt64(raw.count - position), blockEnd - imageOffset))
                let zero = isAllZero(UnsafeRawBufferPointer(rebasing: raw[position..<position + length]))
                if let last = runs.last, last.isZero == zero {
                    runs[runs.count - 1].length += length
                } else {
                    runs.append((position, length, zero))
                }
                position += length
            }
        }
        for run in runs {
            let runOffset = offset + UInt64(run.start)
            if run.isZero {
                builder.addZero(offset: runOffset, length: UInt64(run.length))
            } else {
                builder.addData(offset: runOffset, bytes.getSlice(at: bytes.readerIndex + run.start, length: run.length)!)
            }
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
