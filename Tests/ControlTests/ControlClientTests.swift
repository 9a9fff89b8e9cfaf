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
        // A socket file left behind: bound, never listened on, closed.
        let path = folder.file("stale.sock")
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        #expect(descriptor >= 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { bytes in
            path.utf8CString.withUnsafeBytes { bytes.copyMemory(from: $0) }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        #expect(bound == 0)
        close(descriptor)
        await #expect(throws: (any Error).self) { _ = try await ControlClient.hello(at: path) }
        await #expect(throws: (any Error).self) { _ = try await ControlClient.hello(at: folder.file("missing.sock")) }
    }
}
