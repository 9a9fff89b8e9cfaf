import Foundation
import NBDTestSupport
import Testing

/// `-C auto` and `--request-size auto` with the real binary against real nbdkit servers:
/// what the tuner does and says (its `auto` events), never how fast. The servers answer one
/// request at a time per connection, with a delay, so that more lanes and larger requests
/// clearly help.
///
/// Serialized: the machine has 2 cores.
@Suite(.serialized, .timeLimit(.minutes(3))) struct AutoTuningTests {
    /// nbdkit pattern answering one request at a time per connection, `delay` each; it
    /// advertises multi-conn unless `multiConn` is false.
    static func serializing(_ size: String, delay: String = "5ms", multiConn: Bool = true) throws -> ServerProcess {
        try ServerProcess.nbdkit(["pattern", size, "serialize=requests", "rdelay=\(delay)"]
                                 + (multiConn ? [] : ["multi-conn-mode=disable"]),
                                 filters: ["noparallel", "delay"] + (multiConn ? [] : ["multi-conn"]), options: ["-r"])
    }

    /// The largest lane count the samples show.
    static func mostLanes(_ log: StatsLog) -> Int { log.samples.compactMap { $0.int("lanes") }.max() ?? 0 }

    @Test func addsLanesOnASerializingMultiConnServerWithinMaxConnections() throws {
        let source = try Self.serializing("1G")
        defer { source.stop() }
        let result = try nbdtop("copy", "--max-connections", "6", "--request-size", "256K", "--interval", "200ms",
                                "--stats-json", "-", source.uri, "null:")
        #expect(result.status == 0, "\(result.stderr)")
        let log = try StatsLog(result.stdout)
        #expect(log.start?.int("lanes") == 4, "auto starts with 4 lanes")
        #expect(Self.mostLanes(log) > 4, "auto added a lane that raised the rate")
        #expect(Self.mostLanes(log) <= 6, "never past --max-connections")
        let decisions = log.events("auto")
        #expect(decisions.allSatisfy { ($0.int("lanes_after") ?? 99) <= 6 })
        let added = try #require(decisions.first { $0.string("action") == "add_lane" }, "\(result.stdout)")
        #expect(added.int("lanes_after") == (added.int("lanes_before") ?? 0) + 1)
        #expect((added.double("baseline_rate_bps") ?? 0) > 0 && added.isNull("measured_rate_bps"))
        #expect(added.uint("request_size_before") == 256 << 10 && added.uint("request_size_after") == 256 << 10)
        #expect(!(added.string("reason") ?? "").isEmpty)
        #expect(log.samples.allSatisfy { $0.string("lanes_mode") == "auto" && $0.string("request_size_mode") == "fixed" })
        #expect(decisions.contains { $0.string("action") == "hold" || $0.string("action") == "drop_lane" }
                || Self.mostLanes(log) == 6, "stops climbing: at the limit, or where a lane did not help")
        #expect(try StatsSchema.violations(in: result.stdout).isEmpty)
    }

    @Test func staysAtOneLaneWithoutMultiConnAndGrowsRequests() throws {
        let source = try Self.serializing("256M", multiConn: false)
        defer { source.stop() }
        let result = try nbdtop("copy", "--interval", "200ms", "--stats-json", "-", source.uri, "null:")
        #expect(result.status == 0, "\(result.stderr)")
        let log = try StatsLog(result.stdout)
        #expect(log.start?.int("lanes") == 1 && log.start?.int("max_lanes") == 1)
        #expect(Self.mostLanes(log) == 1)
        #expect(!log.events("auto").contains { $0.string("action") == "add_lane" })
        #expect(log.samples.allSatisfy { $0.string("lanes_mode") == "fixed" && $0.string("request_size_mode") == "auto" })
        // One request at a time: larger requests are what helps here.
        let grown = log.events("auto").filter { $0.string("action") == "grow_request_size" }
        #expect(!grown.isEmpty, "\(result.stdout)")
        // The first look sees each request cost the lane 5 ms and more, and goes at once to
        // the largest size a fit may choose (the queue's 16M); or, on a tick that read
        // under 1.5 ms, up three rungs, then to the size its fit chose. Any later step
        // doubles, or quadruples while a doubling paid in proportion (a leap).
        let firstLook = try #require(grown.first)
        #expect(firstLook.string("reason")?.hasPrefix("a request takes a lane") == true, "\(firstLook.text)")
        #expect(firstLook.uint("request_size_before") == 256 << 10)
        #expect([2 << 20, 16 << 20].contains(firstLook.uint("request_size_after") ?? 0), "\(firstLook.text)")
        #expect(grown.dropFirst().allSatisfy { event in
            let before = event.uint("request_size_before") ?? 0, after = event.uint("request_size_after") ?? 0
            return event.string("reason")?.contains("per request") == true || after == 2 * before || after == 4 * before
        }, "\(grown.map(\.text))")
        #expect(try StatsSchema.violations(in: result.stdout).isEmpty)
    }

    /// `add_lane` and `drop_lane` over the control socket make lanes manual, `auto_lanes`
    /// tunes them again; each is an `auto` event and the samples say so.
    @Test func userLaneChangesSwitchToManualAndBack() throws {
        let run = try ControlRun()
        defer { run.remove() }
        let source = try ControlRun.slowPattern()
        defer { source.stop() }
        let copy = try run.startedCopy(["--interval", "200ms", source.uri, "null:"])
        defer { copy.stop() }
        let client = try ControlConnection(path: run.socket(copy.pid))
        for (command, action, mode) in [("add_lane", "manual", "manual"), ("auto_lanes", "resume", "auto"),
                                        ("drop_lane", "manual", "manual")] {
            try client.send(line: #"{"cmd":"\#(command)"}"#)
            let reply = try parseJSON(try #require(client.readLine { $0.contains("\"ok\"") }, "no reply to \(command)"))
            #expect(reply["ok"] as? Bool == true, "\(command): \(reply)")
            let seen = try copy.waitUntil(timeout: .seconds(20)) {
                let log = try StatsLog(copy.stdout, partial: true)
                let decided = log.events("auto").filter { $0.string("action") == action }
                guard let last = decided.last, let t = last.double("t") else { return false }
                return log.samples.contains { ($0.double("t") ?? 0) > t && $0.string("lanes_mode") == mode }
            }
            #expect(seen, "\(command): no auto \(action) event followed by a \(mode) sample: \(copy.stdout)")
        }
        copy.stop()
    }

    /// Auto request sizes against endpoints with odd block-size limits, enforced with
    /// EINVAL: every size is aligned and within the limits, and sparse-random checks every
    /// byte written.
    @Test(arguments: [
        ("4096", "65536", "1572864"),   // 1.5M maximum: not a power of two
        ("512", "16384", "3145728"),    // 3M
        ("65536", "131072", "655360"),  // 640K, below the 8M the queue allows
    ])
    func autoSizesAreAlignedAndKeepIntegrity(minimum: String, preferred: String, maximum: String) throws {
        let policy = ["blocksize-error-policy=error", "blocksize-minimum=\(minimum)", "blocksize-preferred=\(preferred)",
                      "blocksize-maximum=\(maximum)"]
        let image = ["sparse-random", "512M", "seed=77", "percent=50", "runlength=4194304"]
        let source = try ServerProcess.nbdkit(image + policy + ["serialize=requests", "rdelay=10ms"],
                                              filters: ["blocksize-policy", "noparallel", "delay"])
        defer { source.stop() }
        let destination = try ServerProcess.nbdkit(image + policy, filters: ["blocksize-policy"])
        defer { destination.stop() }
        // A small queue, so that a change shows within a fraction of a second.
        let result = try nbdtop("copy", "--queue-size", "4M", "--stats-json", "-", source.uri, destination.uri,
                                timeout: .seconds(150))
        #expect(result.status == 0, "\(result.stderr)\n\(destination.log)")
        let log = try StatsLog(result.stdout)
        let sizes = [log.start?.uint("request_size_bytes")] + log.samples.map { $0.uint("request_size_bytes") }
            + log.events("auto").flatMap { [$0.uint("request_size_before"), $0.uint("request_size_after")] }
        let alignment = UInt64(preferred)!, limit = UInt64(maximum)!
        #expect(!sizes.isEmpty)
        for size in sizes {
            let size = try #require(size)
            #expect(size % alignment == 0 && size <= limit && size > 0, "request size \(size)")
        }
        #expect(log.events("auto").contains { $0.string("action") == "grow_request_size" }, "\(result.stdout)")
        #expect(log.done?.uint("bytes_done") == 512 << 20)
    }
}
