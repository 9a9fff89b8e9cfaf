import Foundation
import NBDTestSupport
import Testing

/// How copies survive and report the things long imports meet: servers that crash and
/// come back (`--reconnect`), servers that do not, exports that change, errors that a
/// retry cannot mend, and a stop while the final flush is in flight.
@Suite(.serialized) struct ReliabilityTests {
    static let mib: UInt64 = 1 << 20

    /// sparse-random at `seed`, 64 MiB (half data), capped so that a copy takes a few seconds.
    static func sparseRandom(seed: Int, capped: Bool) -> [String] {
        ["sparse-random", "64M", "seed=\(seed)", "percent=50", "runlength=1048576"]
            + (capped ? ["rate=64000000", "burstiness=0.1"] : [])
    }

    /// Kills `server` once the copy has moved bytes, restarts it a second later, and waits
    /// for the copy to end; its exit status.
    static func crashAndRestart(_ server: ServerProcess, during copy: BackgroundCommand) throws -> Int32? {
        server.crash()
        Thread.sleep(forTimeInterval: 1)
        try server.restart()
        return copy.wait(timeout: .seconds(120))
    }

    @Test func sourceCrashAndRestartLosesNothing() throws {
        let source = try ServerProcess.nbdkit(Self.sparseRandom(seed: 7, capped: true), filters: ["rate"])
        defer { source.stop() }
        let destination = try ServerProcess.nbdkit(Self.sparseRandom(seed: 7, capped: false))
        defer { destination.stop() }
        let copy = try CopyCommandTests.startedCopy(["-C", "2", "--reconnect", "30s", source.uri, destination.uri])
        defer { copy.stop() }
        let status = try Self.crashAndRestart(source, during: copy)
        // The destination checked every write against what it would serve: exit 0 means
        // every byte arrived, and arrived right.
        #expect(status == 0, "exit \(String(describing: status)): \(copy.stderr)\n\(destination.log)")
        let log = try StatsLog(copy.stdout)
        #expect(log.events("lane_reconnecting").contains { $0.string("side") == "src" })
        #expect(log.events("lane_reconnected").contains { $0.string("side") == "src" })
        #expect(log.done?.uint("bytes_done") == 64 * Self.mib)
        #expect(log.done?.bool("flushed") == true)
    }

    /// The largest fall of `bytes_done` below its highest value so far (each lane undoes
    /// its own unflushed work, so one crash may show as falls over several samples).
    static func largestFall(_ log: StatsLog) -> UInt64 {
        var peak: UInt64 = 0, fall: UInt64 = 0
        for done in log.samples.compactMap({ $0.uint("bytes_done") }) {
            peak = max(peak, done)
            fall = max(fall, peak - done)
        }
        return fall
    }

    @Test func destinationCrashAndRestartCopiesUnflushedWorkAgain() throws {
        let source = try ServerProcess.nbdkit(Self.sparseRandom(seed: 9, capped: true), filters: ["rate"])
        defer { source.stop() }
        let destination = try ServerProcess.nbdkit(Self.sparseRandom(seed: 9, capped: false))
        defer { destination.stop() }
        // No checkpoint comes within this copy (1 GiB or 30 s): everything done before the
        // crash was acknowledged but never flushed, so all of it is copied again.
        let copy = try CopyCommandTests.startedCopy(["-C", "2", "--reconnect", "30s", "--interval", "100ms",
                                                     source.uri, destination.uri])
        defer { copy.stop() }
        let doneBeforeCrash = try StatsLog(copy.stdout, partial: true).samples.last?.uint("bytes_done") ?? 0
        let status = try Self.crashAndRestart(destination, during: copy)
        #expect(status == 0, "exit \(String(describing: status)): \(copy.stderr)\n\(destination.log)")
        let log = try StatsLog(copy.stdout)
        #expect(log.events("lane_reconnected").contains { $0.string("side") == "dst" })
        #expect(log.done?.uint("bytes_done") == 64 * Self.mib)
        #expect(log.done?.string("flush") == "acknowledged")
        #expect(Self.largestFall(log) >= doneBeforeCrash, "progress did not go back by what was unflushed")
    }

    @Test func checkpointsBoundWhatADestinationCrashCopiesAgain() throws {
        let source = try ServerProcess.nbdkit(Self.sparseRandom(seed: 11, capped: true), filters: ["rate"])
        defer { source.stop() }
        let destination = try ServerProcess.nbdkit(Self.sparseRandom(seed: 11, capped: false))
        defer { destination.stop() }
        let copy = try CopyCommandTests.startedCopy(["-C", "2", "--reconnect", "30s", "--checkpoint", "2M,1s",
                                                     "--interval", "100ms", source.uri, destination.uri])
        defer { copy.stop() }
        // Far enough in that re-copying everything would be a fall of 40 MiB or more.
        let along = try copy.waitUntil(timeout: .seconds(60)) {
            (try StatsLog(copy.stdout, partial: true).samples.last?.uint("bytes_done") ?? 0) >= 40 * Self.mib
        }
        try #require(along, "\(copy.stderr)")
        let status = try Self.crashAndRestart(destination, during: copy)
        #expect(status == 0, "exit \(String(describing: status)): \(copy.stderr)")
        let log = try StatsLog(copy.stdout)
        #expect(log.done?.uint("bytes_done") == 64 * Self.mib)
        // Checkpoints are checked each second; at most about 1 s of this 8 MB/s copy (plus
        // the zero ranges it covers) can be unflushed when the destination goes.
        #expect(Self.largestFall(log) < 24 * Self.mib, "fell by \(Self.largestFall(log)) bytes")
    }

    @Test func aServerThatStaysDownFailsOnceTheReconnectTimeIsUp() throws {
        let source = try ServerProcess.nbdkit(Self.sparseRandom(seed: 3, capped: true), filters: ["rate"])
        defer { source.stop() }
        let copy = try CopyCommandTests.startedCopy(["-C", "2", "--reconnect", "2s", source.uri, "null:"])
        defer { copy.stop() }
        let crashedAt = ContinuousClock.now
        source.crash()
        let status = copy.wait(timeout: .seconds(60))
        let tried = ContinuousClock.now - crashedAt
        #expect(status == 1, "exit \(String(describing: status)): \(copy.stderr)")
        #expect(copy.stderr.contains(source.socketPath), "names the server: \(copy.stderr)")
        #expect(copy.stderr.contains("could not reconnect: tried for 2."), "\(copy.stderr)")
        // The whole duration is tried (the copy notices the break only after the crash);
        // the upper bound is loose for a loaded machine, the pure policy's is 0.5 s.
        #expect(tried >= .seconds(2), "gave up after \(tried)")
        #expect(tried <= .seconds(6), "gave up after \(tried)")
        let log = try StatsLog(copy.stdout)
        #expect(log.events("lane_reconnecting").count >= 2)
        #expect(log.done?.int("exit") == 1)
    }

    /// The destination is killed and does not come back, with `--reconnect` or without: the
    /// copy fails naming it and says how far it got; the image behind the server is left
    /// at its size, holding that prefix.
    @Test(arguments: [nil, "2s"])
    func aDestinationKilledForGoodFailsTheCopy(reconnect: String?) throws {
        let size = 64 * Self.mib
        let source = try ServerProcess.nbdkit(["pattern", String(size), "rate=32000000", "burstiness=0.1"],
                                              filters: ["rate"], options: ["-r"])
        defer { source.stop() }
        let folder = try TemporaryDirectory(prefix: "nbdtop-dst-gone")
        defer { folder.remove() }
        let image = folder.file("dst.img")
        #expect(FileManager.default.createFile(atPath: image, contents: nil))
        #expect(truncate(image, off_t(size)) == 0)
        let destination = try ServerProcess.nbdkit(["file", image])
        defer { destination.stop() }
        let copy = try CopyCommandTests.startedCopy(["-C", "2", "--interval", "100ms"] + (reconnect.map { ["--reconnect", $0] } ?? [])
                                                    + [source.uri, destination.uri])
        defer { copy.stop() }
        destination.crash()
        let status = copy.wait(timeout: .seconds(60))
        #expect(status == 1, "exit \(String(describing: status)): \(copy.stderr)")
        #expect(copy.stderr.contains(destination.socketPath), "names the destination: \(copy.stderr)")
        if let reconnect {
            #expect(copy.stderr.contains("could not reconnect: tried for \(reconnect.dropLast())."), "\(copy.stderr)")
        }
        let log = try StatsLog(copy.stdout)
        #expect(log.done?.int("exit") == 1)
        #expect(log.done?.bool("flushed") == false)
        // "destination … is incomplete: the first N bytes (P%) arrived; it is left as it is, …"
        let match = try #require(copy.stderr.firstMatch(of: /the first ([0-9]+) bytes.* arrived; it is left as it is/),
                                 "says how far it got: \(copy.stderr)")
        let prefix = try #require(UInt64(match.1))
        #expect(prefix < size)
        #expect(try ImageCheck.sizes(of: image).size == size, "the image keeps its size")
        let mismatch = try ImageCheck.firstPatternMismatch(inFile: image)
        #expect(mismatch.map { $0 >= prefix } ?? true, "the first \(prefix) bytes are the source's; a mismatch at \(String(describing: mismatch))")
    }

    enum RefusedWrite: String, CaseIterable, CustomTestStringConvertible {
        /// nbdkit's error filter answers every write with EPERM.
        case epermFromTheErrorFilter
        /// A script (nbdkit's eval plugin) fails every write with EROFS, which nbdkit sends as EPERM.
        case erofsFromAScript

        var testDescription: String { rawValue }
    }

    /// A destination that refuses writes for good fails the copy at once, despite
    /// `--retries`, with the server's error and the offset.
    @Test(arguments: RefusedWrite.allCases)
    func aDestinationThatRefusesWritesFailsAtOnce(refusal: RefusedWrite) throws {
        let source = try ServerProcess.nbdkit(["pattern", "16M"], options: ["-r"])
        defer { source.stop() }
        let destination: ServerProcess
        switch refusal {
        case .epermFromTheErrorFilter:
            destination = try ServerProcess.nbdkit(["memory", "16M", "error-pwrite=EPERM", "error-pwrite-rate=100%"],
                                                   filters: ["error"])
        case .erofsFromAScript:
            destination = try ServerProcess.nbdkit(["eval", "get_size=echo 16M", "can_write=exit 0", "pread=head -c $3 /dev/zero",
                                                    "pwrite=cat >/dev/null; echo 'EROFS read-only storage' >&2; exit 1"])
        }
        defer { destination.stop() }
        let result = try nbdtop("copy", "--retries", "3", "--no-extents", "--stats-json", "-", source.uri, destination.uri,
                                timeout: .seconds(60))
        #expect(result.status == 1, "\(result.stderr)")
        #expect(result.stderr.contains(destination.socketPath), "names the destination: \(result.stderr)")
        #expect(result.stderr.contains("EPERM"), "\(result.stderr)")
        #expect(result.stderr.range(of: #"offset [0-9]+"#, options: .regularExpression) != nil, "\(result.stderr)")
        let log = try StatsLog(result.stdout)
        #expect(log.events("retry").isEmpty, "a refused write was retried")
        #expect(log.done?.int("exit") == 1)
    }

    @Test func anExportThatChangedAcrossAReconnectFailsTheCopy() throws {
        let arguments = ["pattern", "64M", "rate=64000000", "burstiness=0.1"]
        let source = try ServerProcess.nbdkit(arguments, filters: ["rate"], options: ["-r"])
        defer { source.stop() }
        let copy = try CopyCommandTests.startedCopy(["-C", "2", "--reconnect", "30s", source.uri, "null:"])
        defer { copy.stop() }
        source.crash()
        try source.restart(replacingArguments: ["pattern", "32M", "rate=64000000", "burstiness=0.1"])
        let status = copy.wait(timeout: .seconds(60))
        #expect(status == 1, "exit \(String(describing: status)): \(copy.stderr)")
        #expect(copy.stderr.contains("the export changed"), "\(copy.stderr)")
        #expect(copy.stderr.contains("size was 67108864 bytes, now 33554432"), "\(copy.stderr)")
    }

    @Test func aCaptiveServerThatDiesIsFatalAtOnceEvenWithReconnect() throws {
        let copy = try CopyCommandTests.startedCopy(["-C", "2", "--reconnect", "60s", "--",
                                                     "[", "nbdkit", "--filter=rate", "-r", "pattern", "256M",
                                                     "rate=64000000", "burstiness=0.1", "]", "null:"])
        defer { copy.stop() }
        let children = try CommandRunner.run(["pgrep", "-P", String(copy.pid), "nbdkit"])
        let serverPID = try #require(pid_t(children.stdout.split(separator: "\n").first ?? ""), "no nbdkit child: \(children.stderr)")
        kill(serverPID, SIGKILL)
        let status = copy.wait(timeout: .seconds(30))
        #expect(status == 1, "exit \(String(describing: status)): \(copy.stderr)")
        #expect(copy.stderr.contains("was killed by signal 9"), "\(copy.stderr)")
        #expect(!copy.stdout.contains("lane_reconnecting"), "a captive server does not come back")
    }

    @Test func noSpaceLeftFailsAtOnceDespiteRetries() throws {
        let source = try ServerProcess.nbdkit(["pattern", "64M"], options: ["-r"])
        defer { source.stop() }
        let destination = try ServerProcess.nbdkit(["memory", "64M", "error-pwrite=ENOSPC", "error-pwrite-rate=100%"],
                                                   filters: ["error"])
        defer { destination.stop() }
        let result = try nbdtop("copy", "--retries", "3", "--no-extents", "--stats-json", "-", source.uri, destination.uri,
                                timeout: .seconds(60))
        #expect(result.status == 1, "\(result.stderr)")
        #expect(result.stderr.contains("ENOSPC"), "\(result.stderr)")
        #expect(result.stderr.range(of: #"offset [0-9]+"#, options: .regularExpression) != nil, "\(result.stderr)")
        let log = try StatsLog(result.stdout)
        #expect(log.events("retry").isEmpty, "ENOSPC was retried")
        #expect(log.done?.bool("flushed") == false)
    }

    /// A stream source whose reads fail at once after the destination failed used to take
    /// the same range back and fail it for ever on the event loop (about one run in six).
    @Test(arguments: 1...5)
    func aStreamIntoADestinationThatFailsEveryWriteEnds(run: Int) throws {
        let destination = try ServerProcess.nbdkit(["sparse-random", "64M", "seed=1", "percent=50"])
        defer { destination.stop() }
        let binary = try CommandRunner.nbdtopBinary()
        let result = try CommandRunner.run(["sh", "-c", "exec \"$0\" copy --no-tui - \"$1\" < /dev/zero", binary, destination.uri],
                                           timeout: .seconds(60))
        #expect(result.status == 1, "run \(run): \(result.stderr)")
        #expect(result.stderr.contains("EIO"), "\(result.stderr)")
    }

    @Test func transientReadErrorsAreRetriedOnTheSourceSide() throws {
        let source = try ServerProcess.nbdkit(["pattern", "64M", "error-pread=EIO", "error-pread-rate=5%"],
                                              filters: ["error"], options: ["-r"])
        defer { source.stop() }
        let clean = try ServerProcess.nbdkit(["pattern", "64M"], options: ["-r"])
        defer { clean.stop() }
        let folder = try TemporaryDirectory(prefix: "nbdtop-retries")
        defer { folder.remove() }
        let ours = folder.file("ours.img"), theirs = folder.file("clean.img")
        let result = try nbdtop("copy", "-C", "2", "--retries", "5", "--stats-json", "-", source.uri, ours)
        #expect(result.status == 0, "\(result.stderr)")
        // The data equals a clean copy, nbdcopy's from the same export without errors.
        let reference = try peer("nbdcopy", clean.uri, theirs)
        try #require(reference.status == 0, "\(reference.stderr)")
        #expect(try peer("cmp", ours, theirs).status == 0, "the copy with retried reads differs from a clean one")
        #expect(try ImageCheck.firstPatternMismatch(inFile: ours) == nil)
        let log = try StatsLog(result.stdout)
        let retries = log.events("retry")
        #expect(!retries.isEmpty, "the error filter injected no error?")
        #expect(retries.allSatisfy { $0.string("side") == "src" })
        let sourceRetries = log.samples.last?.conns.filter { $0.string("side") == "src" }.compactMap { $0.int("retries") }
        #expect(sourceRetries?.reduce(0, +) == retries.count)
    }

    /// A destination whose FLUSH takes 3 s (nbdkit's eval plugin: writes are discarded,
    /// flush sleeps), to stop a copy while its final flush is in flight.
    static func slowFlushDestination(size: UInt64) throws -> ServerProcess {
        try ServerProcess.nbdkit(["eval", "get_size=echo \(size)", "can_write=exit 0", "can_flush=exit 0",
                                  "pwrite=cat >/dev/null", "pread=head -c $3 /dev/zero", "flush=sleep 3"])
    }

    /// Ctrl-C while the final FLUSH is slow: the same answer every time, 130, with the
    /// flush let finish and reported.
    @Test(arguments: 1...3)
    func aStopDuringTheFinalFlushAlwaysEndsTheSameWay(run: Int) throws {
        let size = 4 * Self.mib
        let source = try ServerProcess.nbdkit(["pattern", String(size)], options: ["-r"])
        defer { source.stop() }
        let destination = try Self.slowFlushDestination(size: size)
        defer { destination.stop() }
        let copy = try BackgroundCommand([try CommandRunner.nbdtopBinary(), "copy", "--stats-json", "-", "--interval", "100ms",
                                          "--no-extents", source.uri, destination.uri])
        defer { copy.stop() }
        let flushing = try copy.waitUntil(timeout: .seconds(60)) {
            try StatsLog(copy.stdout, partial: true).samples.contains { $0.uint("bytes_done") == size }
        }
        try #require(flushing, "the copy never reached the flush: \(copy.stderr)")
        copy.signal(SIGINT)
        let status = copy.wait(timeout: .seconds(60))
        #expect(status == 130, "run \(run): exit \(String(describing: status)): \(copy.stderr)")
        let log = try StatsLog(copy.stdout)
        #expect(log.done?.int("exit") == 130)
        #expect(log.done?.string("flush") == "acknowledged")
    }

    /// A destination whose FLUSH takes 3 s and that logs each write (`W OFFSET COUNT`) and
    /// flush (`F`) to `log`, across restarts.
    static func loggingSlowFlushDestination(size: UInt64, log: String) throws -> ServerProcess {
        try ServerProcess.nbdkit(["eval", "get_size=echo \(size)", "can_write=exit 0", "can_flush=exit 0",
                                  "can_multi_conn=exit 0", "pread=head -c $3 /dev/zero",
                                  "pwrite=echo \"W $4 $3\" >> \(log); cat >/dev/null", "flush=echo F >> \(log); sleep 3"])
    }

    /// The destination crashes while the final FLUSH is in flight and comes back: nothing
    /// done before was durable, so every byte is written again, on both lanes (the idle one
    /// notices its connection closed), and a second flush is acknowledged.
    @Test func aDestinationCrashDuringTheFinalFlushWritesEverythingAgain() throws {
        let size = 4 * Self.mib
        let source = try ServerProcess.nbdkit(["pattern", String(size)], options: ["-r"])
        defer { source.stop() }
        let folder = try TemporaryDirectory(prefix: "nbdtop-flush-crash")
        defer { folder.remove() }
        let log = folder.file("requests.log")
        let destination = try Self.loggingSlowFlushDestination(size: size, log: log)
        defer { destination.stop() }
        let copy = try CopyCommandTests.startedCopy(["-C", "2", "--reconnect", "30s", "--no-extents", "--interval", "100ms",
                                                     source.uri, destination.uri])
        defer { copy.stop() }
        let requests = { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
        let flushing = copy.waitUntil(timeout: .seconds(60)) { requests().contains("F\n") }
        try #require(flushing, "the copy never reached the flush: \(copy.stderr)")
        #expect(Self.covers(requests(), size: size), "written before the flush:\n\(requests())")
        destination.crash()
        try FileManager.default.removeItem(atPath: log)  // from here on, what the new server was sent
        try destination.restart()
        let status = copy.wait(timeout: .seconds(120))
        #expect(status == 0, "exit \(String(describing: status)): \(copy.stderr)")
        let after = requests()
        #expect(Self.covers(after, size: size), "written again after the restart:\n\(after)")
        #expect(after.split(separator: "\n").contains("F"), "no flush after the restart:\n\(after)")
        let stats = try StatsLog(copy.stdout)
        #expect(stats.events("lane_reconnected").filter { $0.string("side") == "dst" }.count == 2, "\(copy.stdout)")
        #expect(stats.done?.string("flush") == "acknowledged")
        #expect(stats.done?.uint("bytes_done") == size)
    }

    /// Whether the `W OFFSET COUNT` lines of `log` cover the image from 0 to `size`.
    static func covers(_ log: String, size: UInt64) -> Bool {
        let ranges = log.split(separator: "\n").compactMap { line -> (UInt64, UInt64)? in
            let fields = line.split(separator: " ")
            guard fields.count == 3, fields[0] == "W", let offset = UInt64(fields[1]), let count = UInt64(fields[2]) else { return nil }
            return (offset, offset + count)
        }.sorted { $0.0 < $1.0 }
        var covered: UInt64 = 0
        for (start, end) in ranges where start <= covered { covered = max(covered, end) }
        return covered >= size
    }

    @Test func flushedMeansAFlushWasAcknowledged() throws {
        let source = try ServerProcess.nbdkit(["pattern", "16M"], options: ["-r"])
        defer { source.stop() }
        let destination = try ServerProcess.nbdkit(["memory", "16M"])
        defer { destination.stop() }
        let discarded = try nbdtop("copy", "--stats-json", "-", source.uri, "null:")
        #expect(discarded.status == 0, "\(discarded.stderr)")
        let unsupported = try StatsLog(discarded.stdout).done
        #expect(unsupported?.bool("flushed") == false)
        #expect(unsupported?.string("flush") == "unsupported")
        let copied = try nbdtop("copy", "--stats-json", "-", source.uri, destination.uri)
        #expect(copied.status == 0, "\(copied.stderr)")
        #expect(try StatsLog(copied.stdout).done?.string("flush") == "acknowledged")
        let unflushed = try nbdtop("copy", "--no-flush", "--stats-json", "-", source.uri, destination.uri)
        #expect(try StatsLog(unflushed.stdout).done?.string("flush") == "notRequested")
    }
}
