import Foundation
import NBD
import NBDCopy
import NBDTestSupport
import NIOCore
import NIOPosix
import Testing
import Telemetry

/// The copy engine's API against real servers: lanes added and dropped mid-copy, a lane
/// whose connection is cut, and the multi-conn limit.
///
/// Serialized: the copies are rate-limited so that there is a "mid-copy", and the machine
/// has 2 cores.
@Suite(.serialized) struct CopyEngineTests {
    static let mib: UInt64 = 1 << 20

    /// Collects the engine's events until the copy ends.
    static func collectEvents(_ engine: CopyEngine) -> Task<[CopyEvent], Never> {
        Task {
            var all: [CopyEvent] = []
            for await event in engine.events { all.append(event) }
            return all
        }
    }

    /// Polls `condition` every 10 ms; false after `timeout`.
    static func eventually(timeout: Duration = .seconds(20), _ condition: () async throws -> Bool) async rethrows -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await condition() { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return try await condition()
    }

    /// The first offset where the export at `uri` differs from nbdkit's pattern, or nil.
    /// Spot checks against `TestBytes.pattern`, then the whole image word by word.
    static func firstPatternMismatch(at uri: String, size: UInt64) async throws -> UInt64? {
        let connection = try await NBDConnection.connect(to: NBDURI.parse(uri))
        #expect(connection.info.size == size)
        var offset: UInt64 = 0
        var mismatch: UInt64?
        let chunk: UInt64 = 4 << 20
        while offset < size && mismatch == nil {
            let length = UInt32(min(chunk, size - offset))
            let buffer = try await connection.read(offset: offset, length: length)
            if offset == 0 || offset + UInt64(length) == size {
                let sample = Array(buffer.readableBytesView.prefix(4096))
                #expect(sample == TestBytes.pattern(offset: offset, count: sample.count), "pattern at \(offset)")
            }
            mismatch = buffer.withUnsafeReadableBytes { ImageCheck.firstPatternMismatch($0, at: offset) }
            offset += UInt64(length)
        }
        await connection.disconnect()
        return mismatch
    }

    // MARK: Lanes through the API

    @Test func addAndDropLanesMidCopy() async throws {
        // 64 MiB at 16 MB/s for the whole server: about 4 s.
        let size = 64 * Self.mib
        let source = try LauncherThread.run { try ServerProcess.nbdkit(["pattern", "64M", "rate=128000000", "burstiness=0.1"],
                                              filters: ["rate"], options: ["-r"]) }
        defer { source.stop() }
        let destination = try LauncherThread.run { try ServerProcess.nbdkit(["memory", "64M"]) }
        defer { destination.stop() }
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let sourceEndpoint = try await NBDEndpoint.open(NBDURI.parse(source.uri), on: loop)
        let destinationEndpoint = try await NBDEndpoint.open(NBDURI.parse(destination.uri), on: loop)
        var options = CopyOptions()
        options.connections = 2
        options.requestsPerLane = 8
        let engine = try CopyEngine(source: sourceEndpoint, destination: destinationEndpoint, options: options,
                                    firstEventLoop: loop)
        #expect(engine.maximumLanes > 4)
        let events = Self.collectEvents(engine)
        let run = Task { try await engine.run() }

        let started = await Self.eventually { await engine.snapshot().bytesDone > 0 }
        try #require(started, "no progress")
        // Paused while lanes come and go, so a busy machine cannot let the copy end first.
        engine.setPaused(true)
        let third = try await engine.addLane()
        let fourth = try await engine.addLane()
        #expect(third == 3 && fourth == 4)
        engine.setPaused(false)
        let fourMoving = await Self.eventually {
            let snapshot = await engine.snapshot()
            let moving = Set(snapshot.connections.filter { $0.side == .source && $0.bytes > 0 }.map(\.laneID))
            return snapshot.lanes == 4 && moving == [1, 2, 3, 4]
        }
        #expect(fourMoving)
        engine.setPaused(true)
        #expect(await engine.snapshot().bytesDone < size, "the copy ended before lanes could be dropped; slow the source")
        // The newest, then the first (which reused the connections that opened the endpoints).
        #expect(engine.dropLane() == 4)
        #expect(engine.dropLane(id: 1) == 1)
        #expect(await engine.snapshot().lanes == 2)
        #expect(engine.dropLane(id: 1) == nil, "already draining")
        engine.setPaused(false)

        let summary = try await run.value
        #expect(summary.snapshot.bytesDone == size)
        #expect(summary.flushed)
        let all = await events.value
        #expect(all.filter { if case .laneAdded = $0 { true } else { false } }.count == 4)
        #expect(all.contains(.laneDropped(laneID: 4)))
        #expect(all.contains(.laneDropped(laneID: 1)))
        #expect(!all.contains { if case .laneFailed = $0 { true } else { false } }, "\(all)")
        // Lanes 2 and 3 carried on; every lane moved some data.
        let bytesBySourceLane = Dictionary(grouping: summary.snapshot.connections.filter { $0.side == .source }, by: \.laneID)
            .mapValues { $0.reduce(0) { $0 + $1.bytes } }
        #expect(Set(bytesBySourceLane.keys) == [1, 2, 3, 4])
        #expect(bytesBySourceLane.values.reduce(0, +) >= size, "\(bytesBySourceLane)")

        #expect(try await Self.firstPatternMismatch(at: destination.uri, size: size) == nil)
    }

    // MARK: Requests in flight

    /// With `--request-size auto`, a lane keeps at most 32 requests in flight until the
    /// tuner's first look is over, then `-R` (48 here, with a queue that holds 48 of 2M):
    /// a server that answers one at a time queues every one, and the size the first look
    /// picks shows only once they are served.
    @Test func theFirstLookKeepsShorterQueuesThenLiftsThem() async throws {
        let source = try LauncherThread.run {
            try ServerProcess.nbdkit(["pattern", "512M", "serialize=requests", "rdelay=5ms"], filters: ["noparallel", "delay"],
                                     options: ["-r"])
        }
        defer { source.stop() }
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let sourceEndpoint = try await NBDEndpoint.open(NBDURI.parse(source.uri), on: loop)
        var options = CopyOptions()
        options.connections = 1
        options.autoRequestSize = true
        options.requestsPerLane = 48
        options.queueSize = 128 << 20
        let engine = try CopyEngine(source: sourceEndpoint, destination: NullEndpoint(size: 512 * Self.mib), options: options,
                                    firstEventLoop: loop)
        let run = Task { try await engine.run() }
        defer { run.cancel() }
        // (requests in flight, whether the tuner had decided anything), every 10 ms.
        var polls: [(inFlight: Int, decided: Bool)] = []
        _ = await Self.eventually(timeout: .seconds(20)) {
            let snapshot = await engine.snapshot()
            let inFlight = snapshot.connections.filter { $0.side == .source }.map(\.inFlight).max() ?? 0
            polls.append((inFlight, snapshot.tuning?.lastDecision != nil))
            return polls.filter(\.decided).count >= 100 || snapshot.bytesDone == 512 * Self.mib
        }
        engine.stop()
        _ = try? await run.value
        // A poll counts as before the first look when the next one also saw no decision:
        // one snapshot reads the lanes and the tuner at slightly different moments.
        let before = zip(polls, polls.dropFirst()).filter { !$0.0.decided && !$0.1.decided }.map(\.0.inFlight)
        let after = polls.filter(\.decided).map(\.inFlight)
        #expect(before.max() == 32, "before the first look: \(before)")
        #expect((after.max() ?? 0) > 32, "after it: \(after)")
        #expect((after.max() ?? 0) <= 48, "after it: \(after)")
    }

    // MARK: A lane's connection cut

    @Test func cutConnectionFailsOneLaneAndTheOthersFinish() async throws {
        let size = 64 * Self.mib
        let source = try LauncherThread.run { try ServerProcess.nbdkit(["pattern", "64M", "rate=128000000", "burstiness=0.1"],
                                              filters: ["rate"], options: ["-r"]) }
        defer { source.stop() }
        let relay = try SocketRelay(upstream: source.socketPath)
        defer { relay.stop() }
        let folder = try TemporaryDirectory(prefix: "nbdtop-engine")
        defer { folder.remove() }
        let output = folder.file("out.img")

        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let sourceEndpoint = try await NBDEndpoint.open(NBDURI.parse(relay.uri), on: loop)
        let destinationEndpoint = try FileEndpoint.open(path: output, forWriting: true, createWithSize: sourceEndpoint.size)
        var options = CopyOptions()
        options.connections = 4
        options.requestsPerLane = 8
        let engine = try CopyEngine(source: sourceEndpoint, destination: destinationEndpoint, options: options,
                                    firstEventLoop: loop)
        let events = Self.collectEvents(engine)
        let run = Task { try await engine.run() }

        let started = await Self.eventually {
            let snapshot = await engine.snapshot()
            return snapshot.lanes == 4 && snapshot.connections.filter { $0.side == .source && $0.bytes > 0 }.count == 4
        }
        try #require(started, "four lanes did not all start copying")
        #expect(relay.acceptedCount == 4, "one connection per lane, the first reused: \(relay.acceptedCount)")
        try #require(relay.cut(2))
        let failed = await Self.eventually {
            await engine.snapshot().connections.contains { $0.state == .failed }
        }
        #expect(failed, "no lane noticed the cut")
        #expect(await engine.snapshot().bytesDone < size, "the copy ended before the cut; slow the source")

        let summary = try await run.value
        #expect(summary.snapshot.bytesDone == size)
        let all = await events.value
        let failures = all.compactMap { event -> (Int, String)? in
            if case .laneFailed(let id, let reason) = event { return (id, reason) }
            return nil
        }
        #expect(failures.count == 1, "\(all)")
        if let (id, reason) = failures.first {
            #expect(reason.contains(relay.socketPath), "the reason names the endpoint: \(reason)")
            let failedConnections = summary.snapshot.connections.filter { $0.laneID == id }
            #expect(failedConnections.map(\.state) == [.failed, .failed], "\(failedConnections)")
            #expect(summary.snapshot.connections.filter { $0.laneID != id }.allSatisfy { $0.state == .closed })
        }
        #expect(source.isRunning, "the relay kept the cut connection's server side open: \(source.log)")
        #expect(try ImageCheck.sizes(of: output).size == size)
        #expect(try ImageCheck.firstPatternMismatch(inFile: output) == nil)
    }

    // MARK: The multi-conn limit

    @Test func serverWithoutMultiConnLimitsToOneLane() async throws {
        let size = 32 * Self.mib
        let source = try LauncherThread.run { try ServerProcess.nbdkit(
            ["pattern", "32M", "multi-conn-mode=disable", "rate=128000000", "burstiness=0.1"],
            filters: ["multi-conn", "rate"], options: ["-r"]) }
        defer { source.stop() }
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let sourceEndpoint = try await NBDEndpoint.open(NBDURI.parse(source.uri), on: loop)
        #expect(sourceEndpoint.maximumConnections == 1)
        let engine = try CopyEngine(source: sourceEndpoint, destination: NullEndpoint(size: size), options: CopyOptions(),
                                    firstEventLoop: loop)
        #expect(engine.maximumLanes == 1)
        #expect(engine.laneLimitReason.contains("multi-conn"), "\(engine.laneLimitReason)")
        #expect(engine.laneLimitReason.contains("source"), "\(engine.laneLimitReason)")
        let events = Self.collectEvents(engine)
        let run = Task { try await engine.run() }

        let started = await Self.eventually { await engine.snapshot().bytesDone > 0 }
        try #require(started, "no progress")
        var refusal: (any Error)?
        do {
            _ = try await engine.addLane()
        } catch {
            refusal = error
        }
        #expect(refusal != nil, "a second lane was added to a server without multi-conn")
        #expect("\(refusal.map { "\($0)" } ?? "")".contains("multi-conn"))
        #expect(await engine.snapshot().lanes == 1)
        #expect(engine.dropLane() == nil, "the last lane is never dropped")

        let summary = try await run.value
        #expect(summary.snapshot.bytesDone == size)
        #expect(Set(summary.snapshot.connections.map(\.laneID)) == [1])
        let all = await events.value
        let refusals = all.compactMap { event -> String? in
            if case .laneRefused(let reason) = event { return reason }
            return nil
        }
        #expect(refusals.count == 1, "\(all)")
        #expect(refusals.first?.contains("multi-conn") == true, "\(refusals)")
        #expect(all.contains(.laneAdded(laneID: 1)))
        #expect(!all.contains(.laneAdded(laneID: 2)))
    }

    @Test func qemuNBDDestinationWithoutSharedClientsLimitsToOneLane() async throws {
        let size = 16 * Self.mib
        let source = try LauncherThread.run { try ServerProcess.nbdkit(["pattern", "16M"], options: ["-r"]) }
        defer { source.stop() }
        let destination = try LauncherThread.run { try ServerProcess.qemuNBD(imageSize: size) }
        defer { destination.stop() }
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let sourceEndpoint = try await NBDEndpoint.open(NBDURI.parse(source.uri), on: loop)
        let destinationEndpoint = try await NBDEndpoint.open(NBDURI.parse(destination.uri), on: loop)
        var options = CopyOptions()
        options.connections = 4
        let engine = try CopyEngine(source: sourceEndpoint, destination: destinationEndpoint, options: options,
                                    firstEventLoop: loop)
        #expect(engine.maximumLanes == 1)
        #expect(engine.laneLimitReason.contains("multi-conn"), "\(engine.laneLimitReason)")
        #expect(engine.laneLimitReason.contains("destination"), "\(engine.laneLimitReason)")
        let events = Self.collectEvents(engine)
        let summary = try await engine.run()
        #expect(summary.snapshot.bytesDone == size)
        #expect(Set(summary.snapshot.connections.map(\.laneID)) == [1])
        #expect(await events.value.filter { if case .laneAdded = $0 { true } else { false } } == [.laneAdded(laneID: 1)])
        #expect(try await Self.firstPatternMismatch(at: destination.uri, size: size) == nil)
    }
}
