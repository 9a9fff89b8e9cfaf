import Foundation
import NBDTestSupport
import Testing

/// The dashboard's figures against servers whose behaviour is known (docs/telemetry.md):
/// a stall shows exactly where a connection is blocked, a slow request where one request
/// was slow while its connection kept moving, and neither under a bandwidth cap. Every run's
/// JSON lines are also checked against the documented schema.
@Suite(.serialized) struct TelemetryTests {
    static let mib: UInt64 = 1 << 20

    /// An nbdkit Python source of `size` bytes of zeroes whose READ at `slowOffset` takes
    /// 1.5 s; in process, so requests cost little, and answered in parallel unless
    /// `serialized` (nbdkit's noparallel filter: one request at a time per connection).
    static func sourceWithOneSlowRead(size: UInt64, slowOffset: UInt64, serialized: Bool,
                                      connectionRate: String? = nil) throws -> (ServerProcess, TemporaryDirectory) {
        let folder = try TemporaryDirectory(prefix: "nbdtop-plugin")
        let script = folder.file("slow.py")
        try """
            import time
            API_VERSION = 2
            def thread_model(): return nbdkit.THREAD_MODEL_PARALLEL
            def open(readonly): return 1
            def get_size(h): return \(size)
            def can_multi_conn(h): return True
            def pread(h, buf, offset, flags):
                if offset == \(slowOffset): time.sleep(1.5)
                buf[:] = bytearray(len(buf))
            import nbdkit
            """.write(toFile: script, atomically: true, encoding: .utf8)
        let rate = connectionRate.map { ["connection-rate=\($0)", "burstiness=0.1"] } ?? []
        let server = try ServerProcess.nbdkit(["python", script] + (serialized ? ["serialize=requests"] : []) + rate,
                                              filters: (serialized ? ["noparallel"] : []) + (rate.isEmpty ? [] : ["rate"]),
                                              options: ["-r"])
        return (server, folder)
    }

    /// Runs `nbdtop copy ARGUMENTS --stats-json -` to the end; its log, checked against the schema.
    static func copy(_ arguments: String...) throws -> StatsLog {
        let result = try CommandRunner.run([try CommandRunner.nbdtopBinary(), "copy", "--stats-json", "-"] + arguments)
        #expect(result.status == 0, "\(result.stderr)")
        let violations = try StatsSchema.violations(in: result.stdout)
        #expect(violations.isEmpty, "\(violations.prefix(5))")
        return try StatsLog(result.stdout)
    }

    @Test func aSerializedServerWithOneSlowRequestStallsExactlyThatConnection() throws {
        // Late enough that every lane has answers to judge its pace by (before a connection's
        // first answer an adaptive threshold is not known: a filling pipeline is no stall).
        let slowOffset: UInt64 = 48 << 20
        let (source, folder) = try Self.sourceWithOneSlowRead(size: 64 * Self.mib, slowOffset: slowOffset, serialized: true)
        defer { source.stop(); folder.remove() }
        // 256K requests fixed: auto's first look would take this slow server to 16M at
        // once, and four requests are too few for a lane's pace to be judged.
        let log = try Self.copy("-C", "4", "-R", "2", "--request-size", "256K", "--no-extents", "--interval", "100ms",
                                source.uri, "null:")
        let stalledIDs = Set(log.events("stall").compactMap { $0.int("id") })
        #expect(stalledIDs.count == 1, "stalls on lanes \(stalledIDs)")
        #expect(log.events("stall").allSatisfy { $0.string("side") == "src" && $0.int("held") == 1 })
        let final = try #require(log.samples.last)
        for conn in final.conns {
            if conn.int("id") == stalledIDs.first && conn.string("side") == "src" {
                #expect(conn.int("stall_episodes") == 1, "\(conn.text)")
                #expect((conn.double("stall_ms") ?? 0) >= 1000, "\(conn.text)")
            } else {
                #expect(conn.int("stall_episodes") == 0, "\(conn.text)")
            }
        }
        #expect(log.events("slow_request").isEmpty, "held requests are not slow: \(log.events("slow_request").map(\.text))")
    }

    @Test func anOutOfOrderServerWithOneSlowRequestHasASlowRequestAndNoStall() throws {
        // Early in a large image, so the copy goes on long after it (the last request of a
        // copy, with nothing else left to do, would rightly count as a stall).
        let slowOffset: UInt64 = 16 << 20
        // About 50 MB/s per connection: some 5 s in all.
        let (source, folder) = try Self.sourceWithOneSlowRead(size: 512 * Self.mib, slowOffset: slowOffset, serialized: false,
                                                              connectionRate: "400M")
        defer { source.stop(); folder.remove() }
        let log = try Self.copy("-C", "2", "-R", "4", "--request-size", "1M", "--no-extents", source.uri, "null:")
        let final = try #require(log.samples.last)
        for conn in final.conns {
            #expect((conn.double("stall_ms") ?? .infinity) <= 300, "\(conn.text)")
        }
        let slow = log.events("slow_request")
        #expect(slow.count == 1, "\(slow.map(\.text))")
        #expect(slow.first?.uint("offset") == slowOffset)
        #expect(slow.first?.string("op") == "read" && slow.first?.string("side") == "src")
        #expect((slow.first?.double("latency_ms") ?? 0) >= 1500)
        #expect(final.conns.compactMap { $0.int("slow_requests") }.reduce(0, +) == 1)
    }

    @Test func aBandwidthCapIsNeitherAndItsRateReadsTrue() throws {
        // 80 × 2^20 bits per second per connection; two connections, about 6 s.
        let capBytesPerSecond = 80.0 * 1_048_576 / 8
        let source = try ServerProcess.nbdkit(["pattern", "128M", "connection-rate=80M", "burstiness=0.1"],
                                              filters: ["rate"], options: ["-r"])
        defer { source.stop() }
        let log = try Self.copy("-C", "2", "-R", "64", "--request-size", "64K", "--no-extents", "--interval", "250ms",
                                source.uri, "null:")
        #expect(log.events("stall").isEmpty, "\(log.events("stall").map(\.text))")
        #expect(log.events("slow_request").isEmpty, "\(log.events("slow_request").map(\.text))")
        let end = log.samples.last?.double("t") ?? 0
        let steady = log.samples.filter { ($0.double("t") ?? 0) >= 2 && ($0.double("t") ?? 0) <= end - 1.5 }
        #expect(steady.count >= 4, "\(steady.count) steady samples")
        for sample in steady {
            for conn in sample.conns where conn.string("side") == "src" {
                let rate = conn.double("rate_bps") ?? 0
                #expect(abs(rate - capBytesPerSecond) <= 0.05 * capBytesPerSecond, "\(rate) B/s in \(conn.text)")
            }
            // The copy's rate is the sum of its destination connections' rates (each rounded).
            let sum = sample.conns.filter { $0.string("side") == "dst" }.compactMap { $0.double("rate_bps") }.reduce(0, +)
            #expect(abs((sample.double("rate_bps") ?? -1) - sum) <= Double(sample.conns.count), "\(sample.text)")
        }
    }

    @Test func aServerThatStopsAnsweringStallsEveryConnectionUntilItResumes() throws {
        let source = try ServerProcess.nbdkit(["pattern", "64M", "connection-rate=40M", "burstiness=0.1"],
                                              filters: ["rate"], options: ["-r"])
        defer { source.stop() }
        let copy = try CopyCommandTests.startedCopy(["-C", "2", "--no-extents", "--interval", "100ms", source.uri, "null:"])
        defer { copy.stop() }
        // Both connections know how often they complete: their stall thresholds are known.
        let moving = try copy.waitUntil(timeout: .seconds(30)) {
            try StatsLog(copy.stdout, partial: true).samples.last?.conns
                .filter { $0.string("side") == "src" && $0.double("stall_threshold_ms") != nil }.count == 2
        }
        try #require(moving, "\(copy.stderr)")
        let stoppedAt = ContinuousClock.now
        source.signal(SIGSTOP)
        Thread.sleep(forTimeInterval: 2)
        source.signal(SIGCONT)
        let stopped = ContinuousClock.now - stoppedAt
        let stoppedFor = Double(stopped.components.seconds) + Double(stopped.components.attoseconds) / 1e18
        #expect(copy.wait(timeout: .seconds(120)) == 0, "\(copy.stderr)")
        let log = try StatsLog(copy.stdout)
        #expect(try StatsSchema.violations(in: copy.stdout).isEmpty)
        let final = try #require(log.samples.last)
        let sources = final.conns.filter { $0.string("side") == "src" }
        #expect(sources.count == 2)
        for conn in sources {
            #expect((conn.int("stall_episodes") ?? 0) >= 1, "\(conn.text)")
            #expect((conn.double("stall_ms") ?? 0) >= 1500, "\(conn.text)")
            // The stall ends when the server answers again: never longer than it was stopped
            // (the threshold comes off the start; half a second for the answers to arrive).
            #expect((conn.double("stall_ms") ?? .infinity) <= stoppedFor * 1000 + 500, "stopped \(stoppedFor) s: \(conn.text)")
            #expect(conn.bool("stalled") == false, "\(conn.text)")
        }
        #expect(Set(log.events("stall").compactMap { $0.int("id") }) == [1, 2])
    }

    @Test func eachConnectionsBytesAreWhatTheServerMovedOnIt() throws {
        let folder = try TemporaryDirectory(prefix: "nbdtop-telemetry")
        defer { folder.remove() }
        let logPath = folder.file("nbdkit.log")
        let source = try ServerProcess.nbdkit(["pattern", "64M", "logfile=\(logPath)"], filters: ["log"], options: ["-r"])
        defer { source.stop() }
        let log = try Self.copy("-C", "4", source.uri, "null:")
        source.stop()
        let text = try String(contentsOfFile: logPath, encoding: .utf8)
        let served = Self.bytesReadPerConnection(nbdkitLog: text)
        let measured = (log.samples.last?.conns ?? []).filter { $0.string("side") == "src" }.compactMap { $0.uint("bytes") }
        #expect(served.values.sorted() == measured.sorted(), "nbdkit: \(served), nbdtop: \(measured)")
        #expect(served.values.reduce(0, +) == 64 * Self.mib)
    }

    /// The bytes of successful Reads per connection in an nbdkit log filter's file (0 for a
    /// connection that made requests but read nothing).
    static func bytesReadPerConnection(nbdkitLog: String) -> [Int: UInt64] {
        var requested: [String: (connection: Int, count: UInt64)] = [:]
        var totals: [Int: UInt64] = [:]
        for line in nbdkitLog.split(separator: "\n") {
            let words = line.split(separator: " ")
            guard let connectionWord = words.first(where: { $0.hasPrefix("connection=") }),
                  let connection = Int(connectionWord.dropFirst("connection=".count)) else { continue }
            totals[connection, default: 0] += 0  // a connection that read nothing counts too
            guard let id = words.first(where: { $0.hasPrefix("id=") }) else { continue }
            let key = "\(connection)/\(id)"
            if words.contains("Read"), let count = words.first(where: { $0.hasPrefix("count=0x") }) {
                requested[key] = (connection, UInt64(count.dropFirst("count=0x".count), radix: 16) ?? 0)
            } else if words.contains("...Read"), words.contains("return=0"), let read = requested[key] {
                totals[read.connection, default: 0] += read.count
            }
        }
        return totals
    }
}
