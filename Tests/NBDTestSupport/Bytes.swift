/// Test data that is different at every offset, so misplaced bytes are caught.
public enum TestBytes {
    /// `count` bytes for image offset `offset` with seed `seed`.
    public static func make(offset: UInt64, count: Int, seed: UInt8 = 0) -> [UInt8] {
        (0..<count).map { index in
            let position = offset + UInt64(index)
            return UInt8(truncatingIfNeeded: position &* 31 &+ (position >> 9) &+ UInt64(seed) &* 7 &+ 1)
        }
    }

    /// The bytes of nbdkit's `pattern` plugin: each 8-byte word holds its own offset, big-endian.
    public static func pattern(offset: UInt64, count: Int) -> [UInt8] {
        (0..<count).map { index in
            let position = offset + UInt64(index)
            let word = position & ~7
            let shift = (7 - (position & 7)) * 8
            return UInt8(truncatingIfNeeded: word >> shift)
        }
    }
}
