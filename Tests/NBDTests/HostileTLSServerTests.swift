import NBD
import NBDTestSupport
import Testing

/// `nbds` against servers that do what no real one does around `NBD_OPT_STARTTLS`:
/// the client must end the connection, and never go on in plaintext.
@Suite struct HostileTLSServerTests {
    /// The scripted server's socket as an `nbds+unix` URI.
    static func tlsURI(_ server: ScriptedServer) throws -> NBDURI {
        try NBDURI.parse(server.uri.replacingPrefix("nbd+unix", with: "nbds+unix") + "&tls-verify-peer=false")
    }

    static func connectError(_ server: ScriptedServer) async throws -> NBDError? {
        var options = NBDConnection.Options()
        options.timeout = .seconds(60)
        do {
            let connection = try await NBDConnection.connect(to: try tlsURI(server), options: options)
            await connection.abort()
            return nil
        } catch let error as NBDError {
            return error
        }
    }

    @Test func refusalEndsWithAbortAndNoExport() async throws {
        let server = try ScriptedServer(handshake: { connection in
            try connection.sendGreeting()
            _ = try connection.receiveClientFlags()
            let (option, _) = try connection.receiveOption()
            try connection.sendOptionReply(option: option, type: NBDWire.repErrUnsup, data: Array("no TLS here".utf8))
            let (next, _) = try connection.receiveOption()
            try connection.sendOptionReply(option: next, type: NBDOptionReplyType.ack)
            return .close
        })
        defer { server.stop() }
        let error = try #require(try await Self.connectError(server))
        guard case .tlsFailed(let message) = error else {
            Issue.record("expected .tlsFailed, got \(error)")
            return
        }
        #expect(message.contains("refused NBD_OPT_STARTTLS (NBD_REP_ERR_UNSUP): no TLS here"), "\(message)")
        #expect(server.waitUntilFinished())
        // STARTTLS, then ABORT: no export was asked for in the clear.
        #expect(server.options == [NBDOption.startTLS.rawValue, NBDOption.abort.rawValue])
    }

    @Test func greetingWithoutFixedNewstyle() async throws {
        let server = try ScriptedServer(handshake: { connection in
            try connection.sendGreeting(flags: 0)
            _ = try connection.receiveClientFlags()
            return .hang
        })
        defer { server.stop() }
        let error = try #require(try await Self.connectError(server))
        guard case .tlsFailed(let message) = error else {
            Issue.record("expected .tlsFailed, got \(error)")
            return
        }
        #expect(message.contains("not fixed newstyle, so it cannot start TLS"), "\(message)")
        #expect(server.options.isEmpty)
    }

    @Test func plaintextAfterTheAcknowledgement() async throws {
        let server = try ScriptedServer(handshake: { connection in
            try connection.sendGreeting()
            _ = try connection.receiveClientFlags()
            let (option, _) = try connection.receiveOption()
            // The ACK and, in the same write, bytes that should have been TLS.
            try connection.send(NBDWire.optionReply(option: option, type: NBDOptionReplyType.ack)
                                + NBDWire.optionReply(option: NBDOption.go.rawValue, type: NBDOptionReplyType.ack))
            return .hang
        })
        defer { server.stop() }
        let error = try #require(try await Self.connectError(server))
        #expect(error.description.contains("in the clear after accepting NBD_OPT_STARTTLS"), "\(error)")
    }
}

private extension String {
    func replacingPrefix(_ prefix: String, with replacement: String) -> String {
        hasPrefix(prefix) ? replacement + dropFirst(prefix.count) : self
    }
}
