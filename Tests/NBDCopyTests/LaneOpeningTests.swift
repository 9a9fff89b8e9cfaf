import NBD
@testable import NBDCopy
import NBDTestSupport
import NIOCore
import NIOPosix
import Testing

/// The starting lanes against a real server that takes its time to accept each
/// connection: lanes 2 to 4 open at once, and lanes opened at once spread over the event
/// loops.
@Suite(.serialized) struct LaneOpeningTests {
    @Test func theStartingLanesOpenAtOnceAndSpreadOverTheLoops() async throws {
        // 0.5 s to open each connection, and a rate cap (8 MB/s: 32 s) so that the copy
        // outlasts them.
        let source = try LauncherThread.run { try ServerProcess.nbdkit(
            ["pattern", "256M", "delay-open=500ms", "rate=64000000", "burstiness=0.1"],
            filters: ["delay", "rate"], options: ["-r"]) }
        defer { source.stop() }
        // Two loops whatever the machine, so that four lanes make two on each.
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        do {
            try await Self.openFourLanes(source: source, group: group)
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
        try await group.shutdownGracefully()
    }

    static func openFourLanes(source: ServerProcess, group: MultiThreadedEventLoopGroup) async throws {
        let size: UInt64 = 256 << 20
        let sourceEndpoint = try await NBDEndpoint.open(NBDURI.parse(source.uri), on: group.next())
        var options = CopyOptions()
        options.connections = 4
        let engine = try CopyEngine(source: sourceEndpoint, destination: NullEndpoint(size: size), options: options, group: group)
        let run = Task { try await engine.run() }
        defer { run.cancel() }
        // The most lanes seen opening at the same moment, polled every 10 ms.
        var mostOpeningAtOnce = 0
        var loopsOfFourLanes: [ObjectIdentifier: Int] = [:]
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            let (opening, loops) = engine.lock.withLock {
                (engine.openingLoops.count, engine.lanes.values.map { ObjectIdentifier($0.eventLoop) })
            }
            mostOpeningAtOnce = max(mostOpeningAtOnce, opening)
            if loops.count == 4 {
                loopsOfFourLanes = loops.reduce(into: [:]) { $0[$1, default: 0] += 1 }
                break
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        let bytesDone = await engine.snapshot().bytesDone
        engine.stop()
        _ = try? await run.value
        // One after another, at most one lane would ever be opening.
        #expect(mostOpeningAtOnce == 3, "the most lanes opening at once: \(mostOpeningAtOnce)")
        #expect(loopsOfFourLanes.values.sorted() == [2, 2],
                "lanes per event loop: \(loopsOfFourLanes.values.sorted()); \(bytesDone) bytes copied by then")
    }
}
