import Testing
import NIOPosix
@testable import Telemetry

/// The bottleneck rules (docs/telemetry.md) on synthetic snapshots: one test per verdict,
/// each over a few seconds of history.
@Suite("What limits the transfer: the bottleneck rules")
struct BottleneckTests {
    static let limits = BottleneckLimits(requestsPerLane: 64, queueSizeBytes: 16 << 20, requestSizeBytes: 256 << 10)

    /// `lanes` lanes at second `second`; each side's in-flight count and stalled time are given.
    static func snapshot(second: Int, lanes: Int = 2, maximumLanes: Int = 64, reason: String = "source: server advertises multi-conn",
                         sourceInFlight: Int = 8, destinationInFlight: Int = 1, sourceStalledTime: Duration = .zero,
                         sourceStalled: Bool = false, destinationStalledTime: Duration = .zero, paused: Bool = false,
                         cpu: Double? = 0.2) -> CopySnapshot {
        var connections: [ConnectionSnapshot] = []
        for lane in 1...lanes {
            var source = ConnectionSnapshot(laneID: lane, side: .source, state: .active)
            source.inFlight = sourceInFlight
            source.inFlightBytes = UInt64(sourceInFlight) * (256 << 10)
            source.stalledTime = sourceStalledTime
            source.stalled = sourceStalled
            source.latencyP50 = .milliseconds(40)
            var destination = ConnectionSnapshot(laneID: lane, side: .destination, state: .active)
            destination.inFlight = destinationInFlight
            destination.inFlightBytes = UInt64(destinationInFlight) * (256 << 10)
            destination.stalledTime = destinationStalledTime
            destination.latencyP50 = .microseconds(500)
            connections += [source, destination]
        }
        var snapshot = CopySnapshot(elapsed: .seconds(second), bytesTotal: 1 << 30, bytesDone: UInt64(second) << 20,
                                    bytesPerSecond: 1_048_576, lanes: lanes, maximumLanes: maximumLanes,
                                    laneLimitReason: reason, paused: paused, connections: connections)
        snapshot.eventLoopCPU = cpu
        return snapshot
    }

    static func verdict(_ snapshots: [CopySnapshot]) -> Bottleneck? {
        var tracker = BottleneckTracker(limits: limits)
        var last: Bottleneck?
        for snapshot in snapshots { last = tracker.observe(snapshot) }
        return last
    }

    @Test("too little history gives no verdict yet")
    func measuring() {
        #expect(Self.verdict([Self.snapshot(second: 0), Self.snapshot(second: 1)]) == nil)
        #expect(Self.verdict((0...4).map { Self.snapshot(second: $0) }) != nil)
    }

    @Test("paused: at once, whatever the history")
    func paused() {
        let verdict = Self.verdict([Self.snapshot(second: 0, paused: true)])
        #expect(verdict?.kind == .paused)
    }

    @Test("source: stalls on the source with lanes to spare, so more lanes help")
    func sourceStalls() throws {
        let snapshots = (0...5).map { Self.snapshot(second: $0, sourceStalledTime: .milliseconds(300 * $0)) }
        let verdict = try #require(Self.verdict(snapshots))
        #expect(verdict.kind == .source)
        #expect(verdict.detail.contains("stalls 30%"), "\(verdict.detail)")
        #expect(verdict.detail.contains("more lanes help"))
    }

    @Test("source: requests always at the -R limit on the source while lanes can be added")
    func sourceWindowFull() throws {
        let snapshots = (0...5).map { Self.snapshot(second: $0, lanes: 1, sourceInFlight: 63, destinationInFlight: 1) }
        let verdict = try #require(Self.verdict(snapshots))
        #expect(verdict.kind == .source)
        #expect(verdict.detail.contains("-R 64") && verdict.detail.contains("more lanes help"), "\(verdict.detail)")
    }

    @Test("destination: requests wait on the destination")
    func destination() throws {
        let snapshots = (0...5).map { Self.snapshot(second: $0, sourceInFlight: 2, destinationInFlight: 30) }
        let verdict = try #require(Self.verdict(snapshots))
        #expect(verdict.kind == .destination)
        #expect(verdict.detail.contains("destination"))
    }

    @Test("lane limit: a source without multi-conn, stalling, one lane")
    func laneLimit() throws {
        let snapshots = (0...5).map {
            Self.snapshot(second: $0, lanes: 1, maximumLanes: 1, reason: "source: server does not advertise multi-conn",
                          sourceStalledTime: .milliseconds(500 * $0))
        }
        let verdict = try #require(Self.verdict(snapshots))
        #expect(verdict.kind == .laneLimit)
        #expect(verdict.detail.hasPrefix("server does not advertise multi-conn: 1 lane"), "\(verdict.detail)")
    }

    @Test("cpu: an event loop near a whole core wins over everything but pause")
    func cpu() throws {
        let snapshots = (0...5).map { Self.snapshot(second: $0, sourceStalledTime: .milliseconds(300 * $0), cpu: 0.97) }
        let verdict = try #require(Self.verdict(snapshots))
        #expect(verdict.kind == .cpu)
        #expect(verdict.detail.contains("97%"))
    }

    @Test("request window: every lane at -R, all lanes in use")
    func requestWindow() throws {
        let snapshots = (0...5).map { Self.snapshot(second: $0, lanes: 4, maximumLanes: 4, sourceInFlight: 60, destinationInFlight: 4) }
        let verdict = try #require(Self.verdict(snapshots))
        #expect(verdict.kind == .requestWindow)
        #expect(verdict.detail.contains("-R 64") && verdict.detail.contains("all 4 lanes"), "\(verdict.detail)")
    }

    @Test("request window by bytes: --queue-size is named when it is the limit hit")
    func queueSizeWindow() throws {
        let limits = BottleneckLimits(requestsPerLane: 64, queueSizeBytes: 2 << 20, requestSizeBytes: 256 << 10)
        var tracker = BottleneckTracker(limits: limits)
        var verdict: Bottleneck?
        for second in 0...5 {
            verdict = tracker.observe(Self.snapshot(second: second, lanes: 2, maximumLanes: 2, sourceInFlight: 7, destinationInFlight: 1))
        }
        #expect(verdict?.kind == .requestWindow)
        #expect(verdict?.detail.contains("--queue-size 2M") == true, "\(verdict?.detail ?? "")")
    }

    @Test("only the last 10 s count: old stalls are forgotten")
    func window() throws {
        var snapshots = (0...3).map { Self.snapshot(second: $0, sourceStalledTime: .milliseconds(800 * $0)) }
        snapshots += (4...20).map { Self.snapshot(second: $0, sourceInFlight: 2, destinationInFlight: 30, sourceStalledTime: .milliseconds(2400)) }
        #expect(Self.verdict(snapshots)?.kind == .destination)
    }
}

@Suite("Per-thread CPU of the event loops")
struct EventLoopCPUTests {
    @Test("utime and stime of an event loop thread's stat line; other threads are skipped")
    func parsing() {
        let line = "4242 (NIO-ELT-0-#1) R 1 2 3 4 5 6 7 8 9 10 150 25 0 0 20 0 1 0 100 0 0"
        #expect(EventLoopCPU.eventLoopTicks(stat: line) == 175)
        #expect(EventLoopCPU.eventLoopTicks(stat: "4243 (a (tricky) name) S 1 2 3 4 5 6 7 8 9 10 150 25 0") == nil)
        #expect(EventLoopCPU.eventLoopTicks(stat: "garbage") == nil)
        #expect(EventLoopCPU.eventLoopTicks(stat: "7 (NIO-SGLTN-0-#0) S 1 2 3 4 5 6 7 8 9 10 3 4 0") == 7)
    }

    @Test("this process's event loop threads are found in procfs")
    func readsThisProcess() throws {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        _ = try loop.submit { 1 }.wait()
        let ticks = try #require(EventLoopCPU.readTicks())
        #expect(!ticks.isEmpty)
    }
}

extension BottleneckTests {
    @Test("a pipeline still filling (nothing in flight yet) does not hide a full window")
    func fillingPipeline() throws {
        let snapshots = [Self.snapshot(second: 0, lanes: 1, sourceInFlight: 0, destinationInFlight: 0)]
            + (1...3).map { Self.snapshot(second: $0, lanes: 1, sourceInFlight: 64, destinationInFlight: 0) }
        let verdict = try #require(Self.verdict(snapshots))
        #expect(verdict.kind == .source && verdict.detail.contains("-R 64"), "\(verdict.detail)")
    }
}
