import Control
import NBDTestSupport
import Testing

import Telemetry
#if canImport(Glibc)
import Glibc
#endif

/// The server over a real Unix socket, with a target that serves large samples: a client
/// that stops reading is dropped once its unsent output passes the bound, while one that
/// reads keeps getting samples.
@Suite(.timeLimit(.minutes(1))) struct ControlServerTests {
    /// Serves 256 KiB samples, so that a client that does not read falls behind fast.
    struct LargeSamples: ControlTarget {
        func helloMembers() async -> [(String, JSONValue)] { [("t", .int(0))] }
        func sampleLine() async -> String {
            JSONValue.object([("v", .int(1)), ("event", .string("sample")),
                              ("pad", .string(String(repeating: "x", count: 256 << 10)))]).compact
        }
        func perform(_ command: ControlCommand) async throws(ControlCommandError) -> [(String, JSONValue)] { [] }
    }

    @Test func aClientThatStopsReadingIsDroppedAndOthersGoOn() async throws {
        let folder = try TemporaryDirectory(prefix: "nbdtop-ctl-server")
        defer { folder.remove() }
        let hub = ControlHub(target: LargeSamples(), defaultInterval: .milliseconds(100))
        let server = try await ControlServer.start(at: folder.file("c.sock"), hub: hub)
        let deaf = try ControlConnection(path: server.path), reader = try ControlConnection(path: server.path)
        #expect(deaf.readLine()?.contains(#""event":"hello""#) == true)
        #expect(reader.readLine()?.contains(#""event":"hello""#) == true)
        var samples = 0
        let deadline = ContinuousClock.now + .seconds(30)
        while hub.clientCount > 1 && ContinuousClock.now < deadline {
            if reader.readLine(timeout: .seconds(5))?.contains(#""event":"sample""#) == true { samples += 1 }
        }
        #expect(hub.clientCount == 1, "the client that does not read was dropped")
        #expect(samples > Int(ControlServer.maximumPendingOutputBytes >> 18), "the reader kept getting samples")
        #expect(reader.readLine()?.contains(#""event":"sample""#) == true)
        #expect(deaf.readLine { _ in false } == nil, "the dropped client reaches the end of its stream")
        await server.close()
        #expect(access(server.path, F_OK) != 0, "the socket file is removed")
    }
}
