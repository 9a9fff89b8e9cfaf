import Glibc
import NBDCopy

// Counts the page faults of freeing and allocating again a 16 MiB request's worth of
// 256 KiB receive buffers, under `HeapPolicy` or under glibc's defaults, for
// `HeapPolicyTests`.
//
// A process of its own, on its main thread: the test process's heap is shared by many
// threads and arenas after a suite has run, and a round there can spill into a heap glibc
// unmaps as soon as it is free whatever the policy. Here every round comes from the main
// heap, which only the trim threshold returns to the kernel.
//
// usage: HeapPolicyProbe policy|defaults
// prints: the fewest faults of a round, and the pages a round writes, which
// `HeapPolicyTests.freedBuffersAreReusedWithoutFaults` compares. The probe itself fails
// (status 1) when its counter does not count: the first round writes fresh memory, and
// fewer faults there than half its pages would make "no faults under the policy" mean
// nothing.

/// Writes `message` to standard error and leaves with `status`.
func fail(_ message: String, status: Int32) -> Never {
    let line = message + "\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
    exit(status)
}

let arguments = CommandLine.arguments.dropFirst()
guard arguments.count == 1, let mode = arguments.first, mode == "policy" || mode == "defaults" else {
    fail("usage: HeapPolicyProbe policy|defaults", status: 2)
}
if mode == "policy", !HeapPolicy.keepFreedBuffersMapped(glibcTunables: nil) {
    fail("HeapPolicyProbe: the heap policy was not set", status: 1)
}

let bufferBytes = 256 << 10, buffersPerRound = 64, rounds = 9
let pagesPerRound = bufferBytes * buffersPerRound / Int(sysconf(Int32(_SC_PAGESIZE)))
var faultsPerRound = [Int](repeating: 0, count: rounds)
// Allocated once, outside the rounds: only the buffers are counted.
var buffers = [UnsafeMutableRawPointer?](repeating: nil, count: buffersPerRound)

/// This process's minor page faults so far.
func minorFaults() -> Int {
    var usage = rusage()
    guard getrusage(RUSAGE_SELF.rawValue, &usage) == 0 else { fail("HeapPolicyProbe: getrusage failed", status: 1) }
    return usage.ru_minflt
}

/// One request's worth of buffers, each written through, freed first to last.
@MainActor func oneRound() {
    for index in 0..<buffersPerRound {
        let buffer = malloc(bufferBytes)!
        memset(buffer, 0xA5, bufferBytes)
        buffers[index] = buffer
    }
    for index in 0..<buffersPerRound { free(buffers[index]) }
}

let beforeFirst = minorFaults()
oneRound()
let firstRoundFaults = minorFaults() - beforeFirst
guard firstRoundFaults >= pagesPerRound / 2 else {
    fail("HeapPolicyProbe: the first round wrote \(pagesPerRound) fresh pages but counted \(firstRoundFaults) faults", status: 1)
}
for round in 0..<rounds {
    let before = minorFaults()
    oneRound()
    faultsPerRound[round] = minorFaults() - before
}
print(faultsPerRound.min()!, pagesPerRound)
