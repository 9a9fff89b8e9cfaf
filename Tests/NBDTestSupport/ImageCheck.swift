import Foundation

/// Fast checks of copied images, word by word, for images too big to compare through
/// `TestBytes` in a debug build.
public enum ImageCheck {
    /// The first offset in `bytes` (which hold the image from `offset` on) that differs
    /// from nbdkit's `pattern` plugin (`TestBytes.pattern`), or nil when all match.
    public static func firstPatternMismatch(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) -> UInt64? {
        let count = bytes.count
        var index = 0
        while index < count {
            let position = offset + UInt64(index)
            if position & 7 == 0 && index + 8 <= count {
                let word = bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self)
                if word != position.bigEndian {
                    return firstBytePatternMismatch(bytes, from: index, at: offset)
                }
                index += 8
            } else {
                let expected = UInt8(truncatingIfNeeded: (position & ~7) >> ((7 - (position & 7)) * 8))
                if bytes[index] != expected { return position }
                index += 1
            }
        }
        return nil
    }

    private static func firstBytePatternMismatch(_ bytes: UnsafeRawBufferPointer, from index: Int, at offset: UInt64) -> UInt64? {
        for byteIndex in index..<min(index + 8, bytes.count) {
            let position = offset + UInt64(byteIndex)
            let expected = UInt8(truncatingIfNeeded: (position & ~7) >> ((7 - (position & 7)) * 8))
            if bytes[byteIndex] != expected { return position }
        }
        return nil
    }

    /// The first offset of a non-zero byte in `bytes` (the image from `offset` on), or nil.
    public static func firstNonZero(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) -> UInt64? {
        var index = 0
        let count = bytes.count
        while index + 8 <= count {
            if bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self) != 0 { break }
            index += 8
        }
        while index < count {
            if bytes[index] != 0 { return offset + UInt64(index) }
            index += 1
        }
        return nil
    }

    /// Reads the file at `path` in chunks and hands each to `check` with its offset; stops
    /// at the first non-nil answer. Throws when the file cannot be read.
    public static func scanFile(_ path: String, chunk: Int = 4 << 20,
                                _ check: (UnsafeRawBufferPointer, UInt64) -> UInt64?) throws -> UInt64? {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw TestSupportError("cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: chunk)
        var offset: UInt64 = 0
        while true {
            let got = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, chunk, off_t(offset)) }
            guard got >= 0 else { throw TestSupportError("cannot read \(path): \(String(cString: strerror(errno)))") }
            if got == 0 { return nil }
            let found = buffer.withUnsafeBytes { check(UnsafeRawBufferPointer(rebasing: $0[0..<got]), offset) }
            if let found { return found }
            offset += UInt64(got)
        }
    }

    /// The first offset where the file differs from the `pattern` plugin, or nil.
    public static func firstPatternMismatch(inFile path: String) throws -> UInt64? {
        try scanFile(path) { firstPatternMismatch($0, at: $1) }
    }

    /// The first non-zero byte's offset in the file, or nil.
    public static func firstNonZero(inFile path: String) throws -> UInt64? {
        try scanFile(path) { firstNonZero($0, at: $1) }
    }

    /// The file's size and the bytes allocated to it (`st_blocks` × 512).
    public static func sizes(of path: String) throws -> (size: UInt64, allocated: UInt64) {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw TestSupportError("cannot stat \(path): \(String(cString: strerror(errno)))")
        }
        return (UInt64(info.st_size), UInt64(info.st_blocks) * 512)
    }
}
