import Control
import NBDTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `ls` asks every socket it finds for a hello; a copy that is ending may close its
/// socket just then. The client must throw, not trap (a debug build traps on a promise
/// left unfulfilled, as `ls --json` once did under load).
@Suite(.timeLimit(.minutes(1))) struct ControlClientTests {
    @Test func aSocketNobodyListensOnThrows() async throws {
        let folder = try TemporaryDirectory(prefix: "nbdtop-ctl-client")
        defer { folder.remove() }
        // A socket file left behind by a listener that has closed: connecting is refused.
        let path = folder.file("stale.sock")
        close(try UnixSocket.listen(at: path))
        await #expect(throws: (any Error).self) { _ = try await ControlClient.hello(at: path) }
        await #expect(throws: (any Error).self) { _ = try await ControlClient.hello(at: folder.file("missing.sock")) }
    }
}
