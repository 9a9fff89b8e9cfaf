#if canImport(Glibc)
import Glibc
#endif

/// A pre-shared key file as gnutls's `psktool` writes it: `username:hexkey` lines.
enum PreSharedKeyFile {
    /// The key of `username` in the file at `path`; throws `NBDError.tlsFailed`.
    @available(*, noasync)
    static func key(for username: String, in path: String) throws(NBDError) -> [UInt8] {
        guard let file = fopen(path, "r") else {
            throw NBDError.tlsFailed("cannot read the pre-shared key file \(path): \(String(cString: strerror(errno)))")
        }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = fread(&chunk, 1, chunk.count, file)
            guard count > 0 else { break }
            bytes += chunk[..<count]
            guard bytes.count <= 1024 * 1024 else {
                throw NBDError.tlsFailed("the pre-shared key file \(path) is larger than 1 MiB")
            }
        }
        guard ferror(file) == 0 else {
            throw NBDError.tlsFailed("cannot read the pre-shared key file \(path): \(String(cString: strerror(errno)))")
        }
        return try key(for: username, inText: String(decoding: bytes, as: UTF8.self), path: path)
    }

    /// The key of `username` in the file's `text`.
    static func key(for username: String, inText text: String, path: String) throws(NBDError) -> [UInt8] {
        for line in text.split(whereSeparator: \.isNewline) {
            let fields = line.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
            guard fields.count == 2, fields[0] == username else { continue }
            guard let key = hexBytes(fields[1]), !key.isEmpty else {
                throw NBDError.tlsFailed("the key of '\(username)' in \(path) is not hexadecimal")
            }
            return key
        }
        throw NBDError.tlsFailed("the pre-shared key file \(path) has no key for '\(username)' (set tls-username=)")
    }

    private static func hexBytes(_ text: Substring) -> [UInt8]? {
        let digits = Array(text.utf8)
        guard digits.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(digits.count / 2)
        var index = 0
        while index < digits.count {
            guard let high = HexDigit.value(digits[index]), let low = HexDigit.value(digits[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        return bytes
    }
}
