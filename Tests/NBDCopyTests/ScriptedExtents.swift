@testable import NBDCopy

/// A source image described as runs of data and zero, answering block status the way
/// real servers may: in their own granularity (runs need not be aligned), stopping after
/// a few extents, and describing the last extent past what was asked.
struct ScriptedExtents {
    /// Runs tiling [0, size) in offset order.
    let runs: [ImageExtent]
    /// The server stops after this many extents, however much was asked.
    var maximumExtentsPerAnswer = Int.max
    /// The last extent of an answer is described whole, past the requested length (the
    /// protocol allows it); false: it is cut at the requested end, as most servers do.
    var describesPastTheRequest = true

    var size: UInt64 { runs.last?.end ?? 0 }

    /// Runs of the given lengths starting at 0, alternating data and zero from `firstIsZero`.
    init(lengths: [UInt64], firstIsZero: Bool = false) {
        var offset: UInt64 = 0
        var isZero = firstIsZero
        var runs: [ImageExtent] = []
        for length in lengths {
            runs.append(ImageExtent(offset: offset, length: length, isZero: isZero))
            offset += length
            isZero.toggle()
        }
        self.runs = runs
    }

    /// The answer to a block status request: extents from `offset` on.
    func answer(offset: UInt64, length: UInt32) -> [ImageExtent] {
        let end = offset + UInt64(length)
        var extents: [ImageExtent] = []
        for run in runs where run.end > offset && run.offset < end {
            guard extents.count < maximumExtentsPerAnswer else { break }
            let start = max(run.offset, offset)
            let runEnd = describesPastTheRequest ? run.end : min(run.end, end)
            extents.append(ImageExtent(offset: start, length: runEnd - start, isZero: run.isZero))
        }
        return extents
    }

    /// Whether every byte of [offset, end) reads as zero.
    func readsAsZero(from offset: UInt64, to end: UInt64) -> Bool {
        runs.allSatisfy { run in run.isZero || run.end <= offset || run.offset >= end }
    }
}
