#if canImport(Glibc)
import Glibc
#endif

/// Measures how much of a core each SwiftNIO event loop thread of this process uses, from
/// `/proc/self/task/*/stat`, so the bottleneck rules can tell when nbdtop itself is the
/// limit.
///
/// Each `busiestShare(now:)` compares the threads' CPU time with the previous reading;
/// readings closer together than `minimumSpan` return the last result, since the kernel
/// counts in clock ticks (10 ms) and a short span would be mostly rounding. The files
/// are in procfs (memory, no disk), so reading them does not block in practice.
public struct EventLoopCPU: Sendable {
    static let minimumSpan = Duration.seconds(1)
    /// SwiftNIO names its event loop threads `NIO-ELT-<group>-#<index>`, those of its
    /// singleton group (the engine's default) `NIO-SGLTN-<group>-#<index>`.
    static let threadNamePrefixes = ["NIO-ELT-", "NIO-SGLTN-"]

    private var lastReading: (at: ContinuousClock.Instant, ticks: [Int: UInt64])?
    private var lastShare: Double?

    public init() {}

    /// The busiest event loop thread's CPU use since the previous reading, as a fraction
    /// of one core; nil before two readings or where procfs is missing.
    public mutating func busiestShare(now: ContinuousClock.Instant = .now) -> Double? {
        if let lastReading, now - lastReading.at < Self.minimumSpan { return lastShare }
        guard let ticks = Self.readTicks() else { return nil }
        defer { lastReading = (now, ticks) }
        guard let lastReading else { return nil }
        let span = Bottleneck.seconds(now - lastReading.at)
        let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))
        guard span > 0, ticksPerSecond > 0 else { return lastShare }
        let busiest = ticks.map { thread, total in total - min(total, lastReading.ticks[thread] ?? total) }.max() ?? 0
        lastShare = Double(busiest) / ticksPerSecond / span
        return lastShare
    }

    /// User plus system clock ticks of every event loop thread, by thread id.
    static func readTicks() -> [Int: UInt64]? {
        guard let directory = opendir("/proc/self/task") else { return nil }
        defer { closedir(directory) }
        var result: [Int: UInt64] = [:]
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard let thread = Int(name), let stat = readSmallFile("/proc/self/task/\(name)/stat"),
                  let ticks = eventLoopTicks(stat: stat) else { continue }
            result[thread] = ticks
        }
        return result
    }

    /// utime + stime from one `stat` line, when its thread is an event loop thread. The
    /// name is in parentheses and may hold spaces, so fields are counted after the last `)`.
    static func eventLoopTicks(stat: String) -> UInt64? {
        guard let open = stat.firstIndex(of: "("), let close = stat.lastIndex(of: ")") else { return nil }
        let name = stat[stat.index(after: open)..<close]
        guard threadNamePrefixes.contains(where: { name.hasPrefix($0) }) else { return nil }
        // After the name: state (field 3) ... utime is field 14, stime field 15.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = UInt64(fields[11]), let system = UInt64(fields[12]) else { return nil }
        return user + system
    }

    private static func readSmallFile(_ path: String) -> String? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var buffer = [UInt8](repeating: 0, count: 1024)
        let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
        guard count > 0 else { return nil }
        return String(decoding: buffer.prefix(count), as: UTF8.self)
    }
}
