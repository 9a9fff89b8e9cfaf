/// A fixed number of consecutive time buckets of byte counts, reused in a ring.
///
/// Buckets are numbered from 0 (the first bucket after the connection opened) and only
/// move forward: adding to or reading at a later bucket number first clears the buckets
/// that were skipped, so an idle stretch reads as zeros. Advancing clears at most
/// `slotCount` slots, so each call is O(1) amortized over the time it skips.
struct BucketRing {
    /// How many buckets, ending with the current one, the ring remembers.
    let slotCount: Int
    private var bytesPerSlot: [UInt64]
    /// The number of the newest bucket; the ring holds `current - slotCount + 1 ... current`.
    private(set) var currentBucket: Int = 0

    init(slotCount: Int) {
        precondition(slotCount > 0, "a ring needs at least one slot")
        self.slotCount = slotCount
        self.bytesPerSlot = Array(repeating: 0, count: slotCount)
    }

    /// Makes `bucket` the current bucket, clearing the buckets between. Earlier numbers are ignored.
    mutating func advance(to bucket: Int) {
        guard bucket > currentBucket else { return }
        if bucket - currentBucket >= slotCount {
            for slot in bytesPerSlot.indices { bytesPerSlot[slot] = 0 }
        } else {
            for skipped in (currentBucket + 1)...bucket { bytesPerSlot[skipped % slotCount] = 0 }
        }
        currentBucket = bucket
    }

    /// Adds `bytes` to `bucket`; a bucket older than the current one counts toward the current one.
    mutating func add(_ bytes: UInt64, to bucket: Int) {
        advance(to: bucket)
        bytesPerSlot[currentBucket % slotCount] &+= bytes
    }

    /// The bytes of `bucket`: zero when it is outside the remembered range.
    func bytes(in bucket: Int) -> UInt64 {
        guard bucket >= 0, bucket <= currentBucket, currentBucket - bucket < slotCount else { return 0 }
        return bytesPerSlot[bucket % slotCount]
    }
}
