import Glibc
import Testing

@testable import NBDCopy

/// The heap policy keeps freed receive buffers mapped: buffers freed in the order they
/// came and allocated again land on pages that are already there.
@Suite struct HeapPolicyTests {
    /// A user's own malloc tuning is left alone.
    @Test func glibcTunablesForMallocWin() {
        #expect(!HeapPolicy.keepFreedBuffersMapped(glibcTunables: "glibc.malloc.trim_threshold=1048576"))
    }

    /// Rounds of a 16 MiB request's worth of 256 KiB buffers, each written through and
    /// freed first to last: after the first round, the pages are reused. Counted in page
    /// faults of this thread, not in time. With glibc's defaults every round faults again.
    @Test func freedBuffersAreReusedWithoutFaults() {
        #expect(HeapPolicy.keepFreedBuffersMapped(glibcTunables: nil))
        let bufferBytes = 256 << 10, buffersPerRound = 64, rounds = 10
        let pagesPerRound = bufferBytes * buffersPerRound / Int(sysconf(Int32(_SC_PAGESIZE)))
        func oneRound() {
            let buffers = (0..<buffersPerRound).map { _ in
                let buffer = UnsafeMutableRawPointer.allocate(byteCount: bufferBytes, alignment: 16)
                buffer.initializeMemory(as: UInt8.self, repeating: 0xA5, count: bufferBytes)
                return buffer
            }
            buffers.forEach { $0.deallocate() }
        }
        oneRound()
        let before = Self.minorFaults()
        for _ in 1..<rounds { oneRound() }
        let faults = Self.minorFaults() - before
        // Every round faulting again would be about `pagesPerRound` each.
        #expect(faults < pagesPerRound, "\(faults) page faults in \(rounds - 1) rounds of \(pagesPerRound) pages")
    }

    private static func minorFaults() -> Int {
        var usage = rusage()
        // RUSAGE_THREAD (1): the Glibc module does not define it without _GNU_SOURCE.
        getrusage(__rusage_who_t(1), &usage)
        return usage.ru_minflt
    }
}
