import Foundation
import NBDTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `nbdtop copy` driving the real binary against real servers: integrity, equality with
/// nbdcopy, lanes and signals, multi-conn rules, faults, `--stats-json` and stalls.
///
/// Serialized: several tests measure rates or stalls, and the machine has 2 cores.
@Suite(.serialized) struct CopyCommandTests {
    static let mib: UInt64 = 1 << 20

    // MARK: Integrity

    /// sparse-random checks every write against what it would serve itself.
    @Test(arguments: [1, 4, 8])
    func sparseRandomIntoSameSeed(lanes: Int) throws {
        let size = "256M"
        let source = try ServerProcess.nbdkit(["sparse-random", size, "seed=4242", "percent=30", "runlength=1048576"])
        defer { source.stop() }
        let destination = try ServerProcess.nbdkit(["sparse-random", size, "seed=4242", "percent=30", "runlength=1048576"])
        defer { destination.stop() }
        let result = try nbdtop("copy", "-C", "\(lanes)", "--stats-json", "-", source.uri, destination.uri)
        #expect(result.status == 0, "\(result.stderr)\n\(destination.log)")
        let log = try StatsLog(result.stdout)
        #expect(log.start?.int("lanes") == lanes)
        // Lanes open one after another; a fast copy may end before the last ones join.
        let added = log.events("lane_added").compactMap { $0.int("id") }
        #expect(!added.isEmpty && Set(added) == Set(1...added.count) && added.count <= lanes, "\(added)")
        let moved = Set(log.samples.flatMap(\.conns).filter { $0.string("side") == "dst" && ($0.uint("bytes") ?? 0) > 0 }
            .compactMap { $0.int("id") })
        #expect(moved.count >= min(lanes, 2), "lanes that wrote: \(moved)")
        #expect(log.done?.uint("bytes_done") == 256 * Self.mib)
        #expect(log.done?.int("exit") == 0)
        #expect(log.events("lane_failed").isEmpty)
    }

    @Test func sparseRandomIntoDifferentSeedFails() throws {
        let source = try ServerProcess.nbdkit(["sparse-random", "128M", "seed=1", "percent=30", "runlength=1048576"])
        defer { source.stop() }
        let destination = try ServerProcess.nbdkit(["sparse-random", "128M", "seed=2", "percent=30", "runlength=1048576"])
        defer { destination.stop() }
        let result = try nbdtop("copy", "-C", "4", source.uri, destination.uri, timeout: .seconds(60))
        #expect(result.status == 1, "\(result.stderr)")
        #expect(result.stderr.hasPrefix("nbdtop: "), "\(result.stderr)")
        #expect(result.stderr.contains(destination.socketPath), "names the destination: \(result.stderr)")
    }

    // MARK: Equality with nbdcopy

    @Test(arguments: [64 << 20, (64 << 20) + 123_457])
    func patternToFileEqualsNbdcopy(size: Int) throws {
        let source = try ServerProcess.nbdkit(["pattern", "\(size)"], options: ["-r"])
        defer { source.stop() }
        let folder = try TemporaryDirectory(prefix: "nbdtop-copy")
        defer { folder.remove() }
        let ours = folder.file("ours.img"), theirs = folder.file("theirs.img")
        let result = try nbdtop("copy", source.uri, ours)
        #expect(result.status == 0, "\(result.stderr)")
        let reference = try peer("nbdcopy", source.uri, theirs)
        try #require(reference.status == 0, "\(reference.stderr)")
        #expect(try ImageCheck.sizes(of: ours).size == UInt64(size))
        let compare = try peer("cmp", ours, theirs)
        #expect(compare.status == 0, "\(compare.stdout)\(compare.stderr)")
        #expect(try ImageCheck.firstPatternMismatch(inFile: ours) == nil)
    }

    @Test func fileToMemoryToFileRoundTrip() throws {
        let folder = try TemporaryDirectory(prefix: "nbdtop-copy")
        defer { folder.remove() }
        let size = 64 * Self.mib
        let original = folder.file("original.img"), back = folder.file("back.img")
        // Random data in a few places, written zeroes in one, holes elsewhere, data at the end.
        try Self.makeFile(original, size: size, randomAt: [(0, 3 << 20), (17 << 20 + 4096, 5 << 20 + 123), (size - 1_000_001, 1_000_001)],
                          zeroesAt: [(40 << 20, 2 << 20)])
        let memory = try ServerProcess.nbdkit(["memory", "\(size)"])
        defer { memory.stop() }
        let there = try nbdtop("copy", "-C", "4", original, memory.uri)
        #expect(there.status == 0, "\(there.stderr)")
        let again = try nbdtop("copy", "-C", "4", memory.uri, back)
        #expect(again.status == 0, "\(again.stderr)")
        #expect(try ImageCheck.sizes(of: back).size == size)
        let compare = try peer("cmp", original, back)
        #expect(compare.status == 0, "\(compare.stdout)\(compare.stderr)")
    }

    @Test func sparseSourceStaysSparseInFile() throws {
        let source = try ServerProcess.nbdkit(["sparse-random", "256M", "seed=3", "percent=10", "runlength=1048576"])
        defer { source.stop() }
        let folder = try TemporaryDirectory(prefix: "nbdtop-copy")
        defer { folder.remove() }
        let ours = folder.file("ours.img"), theirs = folder.file("theirs.img")
        let result = try nbdtop("copy", source.uri, ours)
        #expect(result.status == 0, "\(result.stderr)")
        let reference = try peer("nbdcopy", source.uri, theirs)
        try #require(reference.status == 0, "\(reference.stderr)")
        let compare = try peer("cmp", ours, theirs)
        #expect(compare.status == 0, "\(compare.stdout)\(compare.stderr)")
        let ourSizes = try ImageCheck.sizes(of: ours), theirSizes = try ImageCheck.sizes(of: theirs)
        #expect(ourSizes.size == 256 * Self.mib)
        // nbdcopy allocates about 10%; a full copy would allocate all 256 MiB.
        #expect(theirSizes.allocated < 64 * Self.mib, "nbdcopy's copy is sparse: \(theirSizes.allocated)")
        #expect(ourSizes.allocated <= theirSizes.allocated + theirSizes.allocated / 4 + 4 * Self.mib,
                "allocated \(ourSizes.allocated) bytes, nbdcopy \(theirSizes.allocated)")
    }

    // MARK: Lanes

    @Test func signalsAddAndDropLanes() throws {
        // 64 MiB at 16 MB/s for the whole server: about 4 s.
        let source = try ServerProcess.nbdkit(["pattern", "64M", "rate=128000000", "burstiness=0.1"],
                                              filters: ["rate"], options: ["-r"])
        defer { source.stop() }
        let folder = try TemporaryDirectory(prefix: "nbdtop-copy")
        defer { folder.remove() }
        let output = folder.file("out.img")
        let copy = try Self.startedCopy(["-C", "2", "-R", "8", "--interval", "100ms", source.uri, output])
        defer { copy.stop() }
        copy.signal(SIGUSR1)
        let added = try copy.waitUntil(timeout: .seconds(10)) {
            try StatsLog(copy.stdout, partial: true).events("lane_added").contains { $0.int("id") == 3 }
        }
        #expect(added, "no lane_added 3 after SIGUSR1: \(copy.stderr)")
        // Sampled with three lanes running before one is dropped.
        let three = try copy.waitUntil(timeout: .seconds(10)) {
            try StatsLog(copy.stdout, partial: true).samples.contains { $0.int("lanes") == 3 }
        }
        #expect(three, "no sample with three lanes: \(copy.stdout)")
        #expect(copy.exitStatus == nil, "the copy ended before SIGUSR2; make the source slower")
        copy.signal(SIGUSR2)
        let dropped = try copy.waitUntil(timeout: .seconds(10)) {
            try !StatsLog(copy.stdout, partial: true).events("lane_dropped").isEmpty
        }
        #expect(dropped, "no lane_dropped after SIGUSR2: \(copy.stderr)")
        let status = copy.wait(timeout: .seconds(60))
        #expect(status == 0, "\(copy.stderr)")
        let log = try StatsLog(copy.stdout)
        #expect(log.events("lane_dropped").compactMap { $0.int("id") } == [3], "the newest lane is dropped")
        #expect(log.done?.uint("bytes_done") == 64 * Self.mib)
        #expect(try ImageCheck.sizes(of: output).size == 64 * Self.mib)
        #expect(try ImageCheck.firstPatternMismatch(inFile: output) == nil)
    }

    // MARK: Multi-conn

    struct LimitedServer: Sendable, CustomTestStringConvertible {
        var name: String
        /// Starts the server; the second value says whether it is the destination.
        var start: @Sendable () throws -> (ServerProcess, isDestination: Bool)
        var testDescription: String { name }
    }

    static let limitedServers: [LimitedServer] = [
        LimitedServer(name: "nbdkit multi-conn disabled, source") {
            (try .nbdkit(["pattern", "64M", "multi-conn-mode=disable"], filters: ["multi-conn"], options: ["-r"]), false)
        },
        LimitedServer(name: "qemu-nbd -e 1, source") { (try .qemuNBD(imageSize: 64 << 20, arguments: ["-r"]), false) },
        LimitedServer(name: "nbdkit multi-conn disabled, destination") {
            (try .nbdkit(["memory", "64M", "multi-conn-mode=disable"], filters: ["multi-conn"]), true)
        },
    ]

    @Test(arguments: limitedServers)
    func multiConnRefusedUsesOneLane(server: LimitedServer) throws {
        let (process, isDestination) = try server.start()
        defer { process.stop() }
        let other = try ServerProcess.nbdkit(["pattern", "64M"], options: ["-r"])
        defer { other.stop() }
        let result = isDestination
            ? try nbdtop("copy", "-C", "4", "--stats-json", "-", other.uri, process.uri)
            : try nbdtop("copy", "-C", "4", "--stats-json", "-", process.uri, "null:")
        #expect(result.status == 0, "\(result.stderr)")
        let log = try StatsLog(result.stdout)
        let start = try #require(log.start)
        #expect(start.int("lanes") == 1)
        #expect(start.int("max_lanes") == 1)
        let reason = start.string("max_lanes_reason") ?? ""
        #expect(reason.contains("multi-conn"), "\(reason)")
        #expect(reason.contains(isDestination ? "destination" : "source"), "\(reason)")
        #expect(log.events("lane_added").compactMap { $0.int("id") } == [1])
        for sample in log.samples {
            #expect(Set(sample.conns.compactMap { $0.int("id") }).count <= 1)
        }
        #expect(log.done?.uint("bytes_done") == 64 * Self.mib)
    }

    @Test func captiveServerGetsFourLanes() throws {
        let result = try nbdtop("copy", "-C", "4", "--stats-json", "-", "--", "[", "nbdkit", "-r", "pattern", "512M", "]", "null:")
        #expect(result.status == 0, "\(result.stderr)")
        let log = try StatsLog(result.stdout)
        #expect(log.start?.int("lanes") == 4)
        #expect((log.start?.int("max_lanes") ?? 0) >= 4)
        #expect(Set(log.events("lane_added").compactMap { $0.int("id") }) == [1, 2, 3, 4])
        #expect(log.events("lane_failed").isEmpty)
        let conns = Set(log.samples.flatMap(\.conns).compactMap { $0.int("id") })
        #expect(conns == [1, 2, 3, 4], "connections seen in samples: \(conns)")
        #expect(log.done?.uint("bytes_done") == 512 * Self.mib)
    }

    // MARK: Faults

    @Test func sourceKilledMidCopyFailsNamingIt() throws {
        // 256 MiB at 8 MB/s would take half a minute.
        let source = try ServerProcess.nbdkit(["pattern", "256M", "rate=64000000", "burstiness=0.1"],
                                              filters: ["rate"], options: ["-r"])
        defer { source.stop() }
        let copy = try Self.startedCopy(["-C", "4", "--interval", "100ms", source.uri, "null:"])
        defer { copy.stop() }
        source.signal(SIGKILL)
        let status = copy.wait(timeout: .seconds(30))
        #expect(status == 1, "exit status \(String(describing: status)): \(copy.stderr)")
        #expect(copy.stderr.contains(source.socketPath), "names the source: \(copy.stderr)")
        let log = try StatsLog(copy.stdout)
        #expect(log.done?.int("exit") == 1)
        #expect((log.done?.uint("bytes_done") ?? 0) < 256 * Self.mib)
    }

    @Test func destinationSmallerThanSourceIsRefusedBeforeAnyByte() throws {
        let source = try ServerProcess.nbdkit(["pattern", "64M"], options: ["-r"])
        defer { source.stop() }
        let destination = try ServerProcess.nbdkit(["memory", "32M"])
        defer { destination.stop() }
        let result = try nbdtop("copy", source.uri, destination.uri, timeout: .seconds(30))
        #expect(result.status == 1, "\(result.stderr)")
        #expect(result.stderr.contains("larger"), "\(result.stderr)")
        // Nothing was written: the memory reads as zero and reports no data at all.
        let folder = try TemporaryDirectory(prefix: "nbdtop-copy")
        defer { folder.remove() }
        let readBack = folder.file("dst.img")
        let copy = try peer("nbdcopy", destination.uri, readBack)
        try #require(copy.status == 0, "\(copy.stderr)")
        #expect(try ImageCheck.firstNonZero(inFile: readBack) == nil)
        let map = try peer("nbdinfo", "--map", destination.uri)
        #expect(!map.stdout.contains("data"), "\(map.stdout)")
    }

    @Test func readOnlyDestinationIsRefused() throws {
        let source = try ServerProcess.nbdkit(["pattern", "64M"], options: ["-r"])
        defer { source.stop() }
        let destination = try ServerProcess.nbdkit(["memory", "64M"], options: ["-r"])
        defer { destination.stop() }
        let result = try nbdtop("copy", source.uri, destination.uri, timeout: .seconds(30))
        #expect(result.status == 1, "\(result.stderr)")
        #expect(result.stderr.contains("read-only"), "\(result.stderr)")
        #expect(result.stderr.contains(destination.socketPath), "names the destination: \(result.stderr)")
    }

    @Test func readErrorWithoutRetriesFailsNamingOffsetAndEIO() throws {
        let source = try ServerProcess.nbdkit(["pattern", "64M", "error-pread=EIO", "error-pread-rate=20%"],
                                              filters: ["error"], options: ["-r"])
        defer { source.stop() }
        let result = try nbdtop("copy", "-C", "2", "--no-extents", source.uri, "null:", timeout: .seconds(60))
        #expect(result.status == 1, "\(result.stderr)")
        #expect(result.stderr.contains("EIO"), "\(result.stderr)")
        #expect(result.stderr.range(of: #"offset [0-9]+"#, options: .regularExpression) != nil, "\(result.stderr)")
        #expect(result.stderr.contains(source.socketPath), "names the source: \(result.stderr)")
    }

    @Test func readErrorsWithRetriesStillCopyEverything() throws {
        let source = try ServerProcess.nbdkit(["pattern", "64M", "error-pread=EIO", "error-pread-rate=5%"],
                                              filters: ["error"], options: ["-r"])
        defer { source.stop() }
        let folder = try TemporaryDirectory(prefix: "nbdtop-copy")
        defer { folder.remove() }
        let output = folder.file("out.img")
        let result = try nbdtop("copy", "-C", "4", "--retries", "10", "--stats-json", "-", source.uri, output)
        #expect(result.status == 0, "\(result.stderr)")
        let log = try StatsLog(result.stdout)
        // 256 reads at 5%: no error at all has a chance of about 2 in a million.
        #expect(!log.events("retry").isEmpty, "the error filter injected no error?")
        #expect(log.done?.uint("bytes_done") == 64 * Self.mib)
        #expect(try ImageCheck.firstPatternMismatch(inFile: output) == nil)
    }

    @Test func missingSourceFileIsAUsageError() throws {
        let folder = try TemporaryDirectory(prefix: "nbdtop-copy")
        defer { folder.remove() }
        let missing = folder.file("no-such.img")
        let result = try nbdtop("copy", missing, "null:")
        #expect(result.status == 2, "\(result.stderr)")
        #expect(result.stderr.contains(missing), "\(result.stderr)")
        #expect(result.stdout.isEmpty)
    }

    @Test(arguments: [
        ["-C", "0", "SRC", "null:"],
        ["-R", "0", "SRC", "null:"],
        ["--request-size", "7", "SRC", "null:"],
        ["--sparse", "100", "SRC", "null:"],
        ["--stall-threshold", "soon", "SRC", "null:"],
        ["--interval", "1ms", "SRC", "null:"],
        ["--no-such-flag", "SRC", "null:"],
        ["SRC"],
        [],
        ["SRC", "null:", "null:"],
        ["null:", "DST"],
        ["--", "[", "nbdkit", "-r", "pattern", "1M", "null:"],
        ["nbds://localhost/disk?tls-verify-peer=maybe", "null:"],
    ])
    func badArgumentsExitTwo(arguments: [String]) throws {
        let folder = try TemporaryDirectory(prefix: "nbdtop-copy")
        defer { folder.remove() }
        let source = folder.file("src.img"), destination = folder.file("dst.img")
        try Self.makeFile(source, size: Self.mib, randomAt: [(0, 4096)])
        let words = arguments.map { $0 == "SRC" ? source : $0 == "DST" ? destination : $0 }
        let result = try CommandRunner.run([try CommandRunner.nbdtopBinary(), "copy"] + words)
        #expect(result.status == 2, "\(arguments): \(result.stderr)")
        #expect(result.stderr.hasPrefix("nbdtop: "), "\(result.stderr)")
        #expect(result.stdout.isEmpty)
        #expect(!FileManager.default.fileExists(atPath: destination), "a usage error must not create the destination")
    }

    // MARK: --stats-json

    @Test func statsJSONFollowsTheSchema() throws {
        // 64 MiB at 25 MB/s: about 2.7 s, so there are samples in the middle.
        let source = try ServerProcess.nbdkit(["pattern", "64M", "rate=200000000", "burstiness=0.1"],
                                              filters: ["rate"], options: ["-r"])
        defer { source.stop() }
        let folder = try TemporaryDirectory(prefix: "nbdtop-copy")
        defer { folder.remove() }
        let path = folder.file("stats.jsonl")
        let result = try nbdtop("copy", "-C", "2", "--interval", "250ms", "--stats-json", path, source.uri, "null:")
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.isEmpty, "JSON lines go to the file only")
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text.hasSuffix("\n"))
        let log = try StatsLog(text)
        // Every event and key as documented (docs/stats-json.schema.json).
        let violations = try StatsSchema.violations(in: text)
        #expect(violations.isEmpty, "\(violations.prefix(5))")
        #expect(log.lines.first?.event == "start")
        #expect(log.lines.last?.event == "done")
        let start = try #require(log.start)
        #expect(start.uint("bytes_total") == 64 * Self.mib)
        #expect(start.int("lanes") == 2)

        #expect(log.samples.count >= 4, "\(log.samples.count) samples")
        var previous: UInt64 = 0
        for sample in log.samples {
            for key in ["bytes_done", "bytes_total", "bytes_zero", "lanes"] {
                #expect(sample.uint(key) != nil, "\(key) in \(sample.text)")
            }
            #expect(sample.double("rate_bps") != nil, "\(sample.text)")
            #expect(sample.has("eta_s") && (sample.isNull("eta_s") || sample.double("eta_s") != nil), "\(sample.text)")
            let done = sample.uint("bytes_done") ?? 0
            #expect(done >= previous, "bytes_done goes backwards: \(sample.text)")
            #expect(done <= 64 * Self.mib)
            previous = done
            #expect(sample.has("conns"))
            for conn in sample.conns {
                #expect(conn.int("id") != nil, "\(conn.text)")
                #expect(["src", "dst"].contains(conn.string("side") ?? ""), "\(conn.text)")
                #expect(conn.string("state") != nil, "\(conn.text)")
                for key in ["inflight", "bytes", "stall_episodes"] {
                    #expect(conn.uint(key) != nil, "\(key) in \(conn.text)")
                }
                for key in ["rate_bps", "stall_ms"] {
                    #expect(conn.double(key) != nil, "\(key) in \(conn.text)")
                }
                for key in ["p50_ms", "p99_ms", "oldest_ms"] {
                    #expect(conn.has(key) && (conn.isNull(key) || conn.double(key) != nil), "\(key) in \(conn.text)")
                }
                #expect(conn.bool("stalled") != nil, "\(conn.text)")
            }
        }
        let middle = log.samples.filter { ($0.uint("bytes_done") ?? 0) > 0 && ($0.uint("bytes_done") ?? 0) < 64 * Self.mib }
        #expect(!middle.isEmpty, "no sample in the middle of the copy")
        for sample in middle {
            #expect(Set(sample.conns.compactMap { $0.string("side") }) == ["src", "dst"], "\(sample.text)")
            #expect(sample.conns.count == 4, "two lanes, two connections each: \(sample.text)")
        }
        #expect(log.samples.flatMap(\.conns).contains { $0.double("p50_ms") != nil && $0.string("side") == "src" },
                "source latency is measured")
        #expect(log.samples.flatMap(\.conns).contains { ($0.uint("bytes") ?? 0) > 0 && $0.string("side") == "src" })

        let done = try #require(log.done)
        #expect(done.uint("bytes_done") == 64 * Self.mib)
        #expect(done.uint("bytes_total") == 64 * Self.mib)
        #expect((done.double("elapsed_s") ?? 0) > 0)
        #expect(done.int("exit") == 0)
    }

    @Test func perConnectionRateIsNearTheRateFilterCap() throws {
        // 40 Mbit/s per connection is 5 MB/s; two lanes move 32 MiB in about 3.4 s.
        let capBytesPerSecond = 40_000_000.0 / 8
        let source = try ServerProcess.nbdkit(["pattern", "32M", "connection-rate=40000000", "burstiness=0.1"],
                                              filters: ["rate"], options: ["-r"])
        defer { source.stop() }
        let result = try nbdtop("copy", "-C", "2", "--interval", "250ms", "--stats-json", "-", source.uri, "null:")
        #expect(result.status == 0, "\(result.stderr)")
        let log = try StatsLog(result.stdout)
        let samples = log.samples
        let last = try #require(samples.last?.double("t"))
        // The middle: after the first 1.25 s window has filled, before the tail.
        let middle = samples.filter { let t = $0.double("t") ?? 0; return t >= 1.25 && t <= last - 0.75 }
        try #require(middle.count >= 3, "too few samples in the middle: \(samples.map(\.text))")
        for lane in [1, 2] {
            let rates = middle.compactMap { sample in
                sample.conns.first { $0.int("id") == lane && $0.string("side") == "src" }?.double("rate_bps")
            }.sorted()
            try #require(!rates.isEmpty, "lane \(lane) has no src samples")
            let median = rates[rates.count / 2]
            #expect(abs(median - capBytesPerSecond) <= capBytesPerSecond * 0.5,
                    "lane \(lane): median rate \(median) B/s, cap \(capBytesPerSecond) B/s, rates \(rates)")
        }
        // The global rate is the sum of both.
        let globals = middle.compactMap { $0.double("rate_bps") }.sorted()
        let globalMedian = globals[globals.count / 2]
        #expect(abs(globalMedian - 2 * capBytesPerSecond) <= capBytesPerSecond, "global \(globals)")
    }

    // MARK: Ctrl-C

    @Test func interruptExits130() throws {
        let source = try ServerProcess.nbdkit(["pattern", "256M", "rate=64000000", "burstiness=0.1"],
                                              filters: ["rate"], options: ["-r"])
        defer { source.stop() }
        // Few requests in flight (4 lanes x 4 x 256 KiB at 8 MB/s), so draining them is quick.
        let copy = try Self.startedCopy(["-C", "4", "-R", "4", "--interval", "100ms", source.uri, "null:"])
        defer { copy.stop() }
        copy.signal(SIGINT)
        let status = copy.wait(timeout: .seconds(30))
        #expect(status == 130, "exit status \(String(describing: status)): \(copy.stderr)")
        #expect(copy.stderr.contains("interrupted"), "\(copy.stderr)")
        let log = try StatsLog(copy.stdout)
        #expect(log.done?.int("exit") == 130)
        #expect((log.done?.uint("bytes_done") ?? 0) < 256 * Self.mib)
        // It disconnected politely: the server is still there and serves another client.
        #expect(source.isRunning, "\(source.log)")
    }

    // MARK: Helpers

    /// Makes a file of `size` bytes: random bytes in `randomAt` ranges, written zeroes in
    /// `zeroesAt`, holes elsewhere.
    static func makeFile(_ path: String, size: UInt64, randomAt: [(UInt64, Int)], zeroesAt: [(UInt64, Int)] = []) throws {
        guard FileManager.default.createFile(atPath: path, contents: nil), truncate(path, off_t(size)) == 0 else {
            throw TestSupportError("cannot make \(path)")
        }
        let file = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? file.close() }
        let random = try FileHandle(forReadingFrom: URL(fileURLWithPath: "/dev/urandom"))
        defer { try? random.close() }
        for (offset, count) in randomAt {
            let bytes = try random.read(upToCount: count) ?? Data()
            try #require(bytes.count == count)
            try file.seek(toOffset: offset)
            try file.write(contentsOf: bytes)
        }
        for (offset, count) in zeroesAt {
            try file.seek(toOffset: offset)
            try file.write(contentsOf: Data(count: count))
        }
    }
}

// MARK: - JSON lines

/// A JSON value, decoded strictly: `1` is a number, never a Bool.
enum JSON: Decodable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSON])
    case object([String: JSON])

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSON].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSON].self))
        }
    }

    /// Compact JSON-like text, for test messages.
    var text: String {
        switch self {
        case .null: return "null"
        case .bool(let value): return "\(value)"
        case .number(let value): return value == value.rounded() && abs(value) < 9e15 ? "\(Int(value))" : "\(value)"
        case .string(let value): return "\"\(value)\""
        case .array(let items): return "[" + items.map(\.text).joined(separator: ",") + "]"
        case .object(let members):
            return "{" + members.sorted { $0.key < $1.key }.map { "\"\($0.key)\":\($0.value.text)" }.joined(separator: ",") + "}"
        }
    }
}

/// The JSON lines of one `--stats-json` run.
struct StatsLog {
    let lines: [StatsObject]

    /// Parses every line; with `partial`, a last line without its newline is ignored (the
    /// writer may be in the middle of it).
    init(_ text: String, partial: Bool = false) throws {
        var rows = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if let last = rows.last, last.isEmpty || partial { rows.removeLast() }
        lines = try rows.map { row in
            guard case .object(let members)? = try? JSONDecoder().decode(JSON.self, from: Data(row.utf8)) else {
                throw TestSupportError("not a JSON object line: \(row)")
            }
            return StatsObject(members, text: row)
        }
    }

    func events(_ name: String) -> [StatsObject] { lines.filter { $0.event == name } }
    var start: StatsObject? { events("start").first }
    var done: StatsObject? { events("done").last }
    var samples: [StatsObject] { events("sample") }
}

/// One JSON object with typed accessors.
struct StatsObject {
    let members: [String: JSON]
    let text: String

    init(_ members: [String: JSON], text: String) {
        self.members = members
        self.text = text
    }

    var event: String? { string("event") }

    func has(_ key: String) -> Bool { members[key] != nil }

    func isNull(_ key: String) -> Bool {
        if case .null? = members[key] { return true }
        return false
    }

    func string(_ key: String) -> String? {
        if case .string(let value)? = members[key] { return value }
        return nil
    }

    func double(_ key: String) -> Double? {
        if case .number(let value)? = members[key] { return value }
        return nil
    }

    func int(_ key: String) -> Int? {
        guard let value = double(key), value == value.rounded(), abs(value) < 9e15 else { return nil }
        return Int(value)
    }

    func uint(_ key: String) -> UInt64? {
        guard let value = double(key), value >= 0, value == value.rounded(), value < 9e15 else { return nil }
        return UInt64(value)
    }

    func bool(_ key: String) -> Bool? {
        if case .bool(let value)? = members[key] { return value }
        return nil
    }

    var conns: [StatsObject] {
        guard case .array(let items)? = members["conns"] else { return [] }
        return items.compactMap { item in
            guard case .object(let members) = item else { return nil }
            return StatsObject(members, text: item.text)
        }
    }
}

extension CopyCommandTests {
    /// Starts `nbdtop copy ARGUMENTS --stats-json -` in the background and returns once
    /// it has moved bytes; fails the test if it ends or stalls first.
    static func startedCopy(_ arguments: [String]) throws -> BackgroundCommand {
        let copy = try BackgroundCommand([try CommandRunner.nbdtopBinary(), "copy", "--stats-json", "-"] + arguments)
        let running = try copy.waitUntil(timeout: .seconds(30)) {
            try StatsLog(copy.stdout, partial: true).samples.contains { ($0.uint("bytes_done") ?? 0) > 0 }
        }
        guard running && copy.exitStatus == nil else {
            copy.stop()
            throw TestSupportError("copy did not start: \(copy.stderr)")
        }
        return copy
    }
}
