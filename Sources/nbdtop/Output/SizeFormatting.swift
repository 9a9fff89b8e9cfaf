/// Sizes for people: `1M`, `1.5G`, as nbdinfo and qemu-img print them.
enum SizeFormatting {
    private static let units = ["K", "M", "G", "T", "P", "E"]

    /// Exact multiples of a power of 1024 print as whole numbers, others with one decimal.
    static func human(_ bytes: UInt64) -> String {
        guard bytes >= 1024 else { return String(bytes) }
        var unitIndex = -1
        var divisor: UInt64 = 1
        while unitIndex + 1 < units.count, bytes / (divisor * 1024) >= 1 {
            unitIndex += 1
            divisor *= 1024
            if divisor > UInt64.max / 1024 { break }
        }
        if bytes % divisor == 0 { return "\(bytes / divisor)\(units[unitIndex])" }
        let tenths = (bytes * 10 + divisor / 2) / divisor
        return "\(tenths / 10).\(tenths % 10)\(units[unitIndex])"
    }
}
