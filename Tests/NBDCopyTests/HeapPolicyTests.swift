import Glibc
import NBDTestSupport
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
    /// faults, not in time. With glibc's defaults every round faults again.
    ///
    /// Counted in a child process, where no other thread shares the heap, and as the
    /// round that faulted least: the child's heap is the test process's, shared
    /// copy-on-write, so a round that lands on free memory the child has not written yet
    /// faults once for each page of it (a full suite's run counted 8,073 faults in nine
    /// rounds that way, and CI once a median round of 1,793). Without the policy every
    /// round faults about once a page, the least too (4,096 in 4,096 pages).
    @Test func freedBuffersAreReusedWithoutFaults() throws {
        #expect(HeapPolicy.keepFreedBuffersMapped(glibcTunables: nil))
        let bufferBytes = 256 << 10, buffersPerRound = 64, rounds = 9
        let pagesPerRound = bufferBytes * buffersPerRound / Int(sysconf(Int32(_SC_PAGESIZE)))
        let fewestFaults = try Self.inChildProcess {
            withUnsafeTemporaryAllocation(of: UnsafeMutableRawPointer?.self, capacity: buffersPerRound) { buffers in
                withUnsafeTemporaryAllocation(of: Int.self, capacity: rounds) { faults in
                    func oneRound() {
                        for index in 0..<buffersPerRound {
                            let buffer = malloc(bufferBytes)!
                            memset(buffer, 0xA5, bufferBytes)
                            buffers[index] = buffer
                        }
                        for index in 0..<buffersPerRound { free(buffers[index]) }
                    }
                    oneRound()
                    for round in 0..<rounds {
                        let before = minorFaults()
                        oneRound()
                        faults[round] = minorFaults() - before
                    }
                    return faults.min() ?? 0
                }
            }
        }
        // A round faulting again would be about `pagesPerRound`. A quarter of it: a full
        // suite's run on a busy machine once counted 513 in its best round, an eighth plus one.
        #expect(fewestFaults < pagesPerRound / 4, "the best round of \(rounds) faulted \(fewestFaults) times in \(pagesPerRound) pages")
    }

    /// Runs `body` in a forked child and returns what it returned. The child runs only
    /// `body` (plain malloc, memset and system calls: no lock another thread may have held
    /// at the fork) and leaves with `_exit`.
    private static func inChildProcess(_ body: () -> Int) throws -> Int {
        var pipeEnds: [Int32] = [0, 0]
        guard pipe(&pipeEnds) == 0 else { throw TestSupportError("pipe: errno \(errno)") }
        defer { close(pipeEnds[0]) }
        let child = fork()
        guard child >= 0 else {
            close(pipeEnds[1])
            throw TestSupportError("fork: errno \(errno)")
        }
        if child == 0 {
            var result = body()
            let written = write(pipeEnds[1], &result, MemoryLayout<Int>.size)
            _exit(written == MemoryLayout<Int>.size ? 0 : 1)
        }
        close(pipeEnds[1])
        var result = 0
        let count = read(pipeEnds[0], &result, MemoryLayout<Int>.size)
        var status: Int32 = 0
        while waitpid(child, &status, 0) < 0 && errno == EINTR {}
        guard count == MemoryLayout<Int>.size, status == 0 else {
            throw TestSupportError("the child process read \(count) bytes and ended with status \(status)")
        }
        return result
    }
}

/// This thread's minor page faults so far.
private func minorFaults() -> Int {
    var usage = rusage()
    // RUSAGE_THREAD (1): the Glibc module does not define it without _GNU_SOURCE.
    getrusage(__rusage_who_t(1), &usage)
    return usage.ru_minflt
}
