#if canImport(Glibc)
import CMalloc
#endif

/// How the process's allocator treats the copy's buffers: freed memory stays mapped for
/// the next request instead of going back to the kernel.
///
/// A copy holds each reply's payload as slices of 256 KiB receive buffers until the
/// destination has it, and frees them in the order they arrived: the top of the heap is
/// free again and again. glibc's defaults return such a top to the kernel as soon as it
/// passes 128 KiB (adjusted upwards only as far as the largest buffer freed), and serve
/// buffers over its threshold with a fresh mapping each: every buffer then arrives on
/// pages that fault in again, one fault per 4 KiB. With 16 MiB requests that was over
/// 200,000 faults a GiB and a third of a copy's time from a server that answers one
/// request at a time (a Python plugin). Kept mapped, the pages are reused.
///
/// The memory kept is bounded: at most `trimThresholdBytes` of free heap beyond what is
/// in use, and what is in use is bounded by the lanes' queues.
public enum HeapPolicy {
    /// Allocations at least this large get a mapping of their own: a zero buffer, not the
    /// receive buffers.
    public static let mmapThresholdBytes = 4 << 20
    /// Free memory at the top of a heap is returned to the kernel past this much.
    public static let trimThresholdBytes = 64 << 20

    /// Sets both thresholds, unless `glibcTunables` (the environment's `GLIBC_TUNABLES`)
    /// sets malloc's own: a user's tuning wins. Call once, before any copy starts; returns
    /// whether the thresholds were set.
    @discardableResult
    public static func keepFreedBuffersMapped(glibcTunables: String?) -> Bool {
        #if canImport(Glibc)
        if let glibcTunables, glibcTunables.contains("glibc.malloc.") { return false }
        // Setting either fixes both: glibc stops adjusting them on its own.
        return mallopt(M_MMAP_THRESHOLD, Int32(mmapThresholdBytes)) == 1
            && mallopt(M_TRIM_THRESHOLD, Int32(trimThresholdBytes)) == 1
        #else
        return false
        #endif
    }
}
