import NBD
import NBDTestSupport
import NIOCore
import Testing

/// Errors a real server reports reach the caller with the server's errno.
@Suite struct ServerErrorTests {
    static let modes: [[String]] = [[], ["--no-sr"]]

    @Test(arguments: modes)
    func readErrorIsEIO(options: [String]) async throws {
        let server = try ServerProcess.nbdkit(["memory", "1M", "error-pread=EIO", "error-pread-rate=100%"],
                                              filters: ["error"], options: options)
        defer { server.stop() }
        let connection = try await NBDConnection.connect(to: try NBDURI.parse(server.uri))
        await #expect {
            _ = try await connection.read(offset: 4096, length: 4096)
        } throws: { error in
            guard case NBDError.serverError(.read, let offset, _, let errno, _) = error else { return false }
            return errno == .eio && offset == 4096
        }
        // A server error fails only that request: the connection goes on.
        try await connection.write(ByteBuffer(bytes: [1, 2, 3, 4]), at: 0)
        await connection.disconnect()
    }

    @Test(arguments: modes)
    func writeErrorIsENOSPC(options: [String]) async throws {
        let server = try ServerProcess.nbdkit(["memory", "1M", "error-pwrite=ENOSPC", "error-pwrite-rate=100%"],
                                              filters: ["error"], options: options)
        defer { server.stop() }
        let connection = try await NBDConnection.connect(to: try NBDURI.parse(server.uri))
        await #expect {
            try await connection.write(ByteBuffer(bytes: Array(repeating: 7, count: 8192)), at: 8192)
        } throws: { error in
            guard case NBDError.serverError(.write, _, _, let errno, _) = error else { return false }
            return errno == .enospc && "\(error)".contains("ENOSPC")
        }
        await connection.disconnect()
    }

    @Test func unknownExportCarriesServersMessage() async throws {
        let server = try ServerProcess.qemuNBD(imageSize: 1 << 20, exportName: "disk")
        defer { server.stop() }
        let uri = try NBDURI.parse("nbd+unix:///nosuch?socket=\(server.socketPath)")
        await #expect {
            _ = try await NBDConnection.connect(to: uri)
        } throws: { error in
            guard case NBDError.unknownExport(let name, let message) = error else { return false }
            return name == "nosuch" && !message.isEmpty
        }
    }

    @Test func listsExports() async throws {
        let server = try ServerProcess.nbdServer(imageSize: 1 << 20, exportName: "disk")
        defer { server.stop() }
        let exports = try await NBDConnection.listExports(at: try NBDURI.parse(server.uri))
        #expect(exports.map(\.name) == ["disk"])
    }
}
