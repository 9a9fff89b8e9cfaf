import Control
import NBDCopy
import Testing
@testable import nbdtop
import Telemetry

/// `nbdtop attach` draws what it decodes from the control socket's lines: decoding a line
/// `StatsJSON` wrote gives back what was written.
@Suite struct SnapshotDecodingTests {
    /// Two lanes with every figure set to a value the encoder keeps exactly (whole
    /// rates, whole microseconds), one lane failed with a reason.
    static func snapshot() -> CopySnapshot {
        var connections: [ConnectionSnapshot] = []
        for lane in 1...2 {
            for side in [ConnectionSide.source, .destination] {
                var connection = ConnectionSnapshot(laneID: lane, side: side, state: lane == 2 ? .failed : .active)
                connection.failureReason = lane == 2 ? "source: connection reset" : nil
                connection.reconnectAttempt = lane
                connection.reconnects = 3
                connection.bytes = 123_456_789
                connection.bytesPerSecond = 10_485_760
                connection.inFlight = 7
                connection.inFlightBytes = 7 << 18
                connection.latencyP50 = .microseconds(1500)
                connection.latencyP99 = side == .source ? .milliseconds(12) : nil
                connection.oldestInFlight = .milliseconds(900)
                connection.stallThreshold = .milliseconds(100)
                connection.slowThreshold = nil
                connection.stalled = side == .source
                connection.held = 6
                connection.slowRequests = 2
                connection.stallEpisodes = 4
                connection.stalledTime = .milliseconds(1250)
                connection.requestsHeldBehind = 40
                connection.errors = 1
                connection.retries = 5
                connections.append(connection)
            }
        }
        var snapshot = CopySnapshot(elapsed: .milliseconds(75_250), bytesTotal: 4 << 30, bytesDone: 1 << 30, bytesZeroed: 256 << 20,
                            bytesSkipped: 64 << 20, bytesPerSecond: 104_857_600, averageBytesPerSecond: 94_371_840,
                            eta: .milliseconds(30_500), lanes: 2, maximumLanes: 16,
                            laneLimitReason: "source: server advertises multi-conn", paused: true, connections: connections,
                            tuning: TuningStatus(laneMode: .manual, requestSizeIsAuto: true, requestSize: 1 << 20,
                                                 lastDecision: "a lane was added or dropped by hand: lanes are manual"))
        snapshot.destinationIsNBD = false
        snapshot.bottleneck = Bottleneck(kind: .laneLimit, detail: "server does not advertise multi-conn: 1 lane")
        return snapshot
    }

    @Test func sampleRoundTrips() throws {
        let written = Self.snapshot()
        let start = try JSONValue.parse(StatsJSON.start(t: 0, source: "a", destination: "b", destinationIsNBD: false,
                                                        size: written.bytesTotal, lanes: 2,
                                                        maximumLanes: 16, laneLimitReason: written.laneLimitReason,
                                                        requestSize: 1 << 18))
        let sample = try JSONValue.parse(StatsJSON.sample(written))
        let read = try #require(SnapshotDecoding.snapshot(sample: sample, start: start))
        #expect(read.elapsed == written.elapsed)
        #expect(read.bytesTotal == written.bytesTotal && read.bytesDone == written.bytesDone)
        #expect(read.bytesZeroed == written.bytesZeroed && read.bytesSkipped == written.bytesSkipped)
        #expect(read.bytesPerSecond == written.bytesPerSecond && read.averageBytesPerSecond == written.averageBytesPerSecond)
        #expect(read.eta == written.eta)
        #expect(read.lanes == written.lanes && read.maximumLanes == written.maximumLanes)
        #expect(read.laneLimitReason == written.laneLimitReason && read.paused == written.paused)
        #expect(read.connections == written.connections)
        #expect(read.bottleneck == written.bottleneck && read.destinationIsNBD == written.destinationIsNBD)
        #expect(StatsJSON.sample(read) == StatsJSON.sample(written), "decoding and encoding again gives the same line")
    }

    @Test func unknownETAAndSizeStayUnknown() throws {
        var written = Self.snapshot()
        written.eta = nil
        written.bytesTotal = nil
        let read = try #require(SnapshotDecoding.snapshot(sample: try JSONValue.parse(StatsJSON.sample(written)), start: .null))
        #expect(read.eta == nil && read.bytesTotal == nil)
        #expect(read.destinationIsNBD, "without a start line, both sides are shown")
    }

    @Test(arguments: [
        CopyEvent.laneAdded(laneID: 3), .laneDropped(laneID: 2), .laneFailed(laneID: 1, reason: "EIO"),
        .laneRefused(reason: "the source allows 1"), .stall(laneID: 2, side: .source, oldestAge: .milliseconds(1500), held: 9),
        .slowRequest(laneID: 1, side: .destination, operation: .zero, offset: 1 << 30, length: 1 << 20, latency: .milliseconds(250)),
        .retry(laneID: 4, side: .source, offset: 4096, length: 512, attempt: 2, error: "EAGAIN"),
        .laneReconnecting(laneID: 1, side: .destination, attempt: 3, error: "connection refused"),
        .laneReconnected(laneID: 1, side: .source), .paused(true), .paused(false),
        .auto(TuningDecision(action: .dropLane, lanesBefore: 5, lanesAfter: 4, requestSizeBefore: 1 << 20,
                             requestSizeAfter: 1 << 20, baselineBytesPerSecond: 300e6, measuredBytesPerSecond: 301e6,
                             reason: "lane 5 taken back")),
        .auto(TuningDecision(action: .growRequestSize, lanesBefore: 1, lanesAfter: 1, requestSizeBefore: 256 << 10,
                             requestSizeAfter: 512 << 10, baselineBytesPerSecond: 50e6, reason: "trying 512K")),
    ])
    func eventRoundTrips(event: CopyEvent) throws {
        #expect(SnapshotDecoding.event(try JSONValue.parse(StatsJSON.event(event, t: 1.5))) == event)
    }

    @Test func linesThatAreNotEventsGiveNone() throws {
        for line in [StatsJSON.sample(Self.snapshot()), StatsJSON.error("x", t: 1), StatsJSON.done(nil, t: 1, exitStatus: 0)] {
            #expect(SnapshotDecoding.event(try JSONValue.parse(line)) == nil, "\(line)")
        }
        #expect(SnapshotDecoding.snapshot(sample: try JSONValue.parse(StatsJSON.error("x", t: 1)), start: .null) == nil)
    }
}
