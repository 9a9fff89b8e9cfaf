/// Turns a server's extent list into contiguous, aligned extents the planner can trust.
///
/// Servers answer block status in their own granularity, may stop early, and may report
/// more than was asked. The planner needs extents that start exactly at the cursor, sit
/// on `alignment` boundaries (so zero requests obey both endpoints' block sizes) and never
/// pass the image's end. A zero extent shrinks to its aligned interior; what it loses
/// becomes data, which is always safe to copy.
enum ExtentNormalizer {
    static func normalize(_ extents: [ImageExtent], from start: UInt64, alignment: UInt64, imageEnd: UInt64) -> [ImageExtent] {
        precondition(alignment > 0 && start < imageEnd)
        var position = start
        var contiguous: [ImageExtent] = []
        for extent in extents {
            guard extent.offset == position, extent.length > 0, position < imageEnd else { break }
            let length = min(extent.length, imageEnd - position)
            contiguous.append(ImageExtent(offset: position, length: length, isZero: extent.isZero))
            position += length
        }
        // Where the usable answer ends: the image end, or an aligned point before it.
        var end = position == imageEnd ? imageEnd : alignDown(position, alignment)
        if end <= start {
            // Less than one aligned block was described: copy one block as data.
            end = min(alignUp(start + 1, alignment), imageEnd)
            return [ImageExtent(offset: start, length: end - start, isZero: false)]
        }
        var result: [ImageExtent] = []
        func append(_ offset: UInt64, _ extentEnd: UInt64, _ isZero: Bool) {
            guard extentEnd > offset else { return }
            if var last = result.last, last.isZero == isZero, last.end == offset {
                last.length += extentEnd - offset
                result[result.count - 1] = last
            } else {
                result.append(ImageExtent(offset: offset, length: extentEnd - offset, isZero: isZero))
            }
        }
        for extent in contiguous where extent.offset < end {
            let extentEnd = min(extent.end, end)
            guard extent.isZero else {
                append(extent.offset, extentEnd, false)
                continue
            }
            let zeroStart = alignUp(extent.offset, alignment)
            let zeroEnd = extentEnd == imageEnd ? imageEnd : alignDown(extentEnd, alignment)
            if zeroStart < zeroEnd {
                append(extent.offset, zeroStart, false)
                append(zeroStart, zeroEnd, true)
                append(zeroEnd, extentEnd, false)
            } else {
                append(extent.offset, extentEnd, false)
            }
        }
        return result
    }

    static func alignDown(_ value: UInt64, _ alignment: UInt64) -> UInt64 { value - value % alignment }
    static func alignUp(_ value: UInt64, _ alignment: UInt64) -> UInt64 { alignDown(value + alignment - 1, alignment) }
}
