import NIOCore
import NIOSSL

/// Where the handshake's bytes come from and where the client's answers go.
///
/// `Negotiator` only ever needs exact-length reads and whole writes, so it does not care
/// whether the bytes come from a socket or, for the protocol replay behind the fuzzers
/// and the corpus tests, from memory.
protocol NegotiationTransport: Sendable {
    /// Returns exactly `count` bytes from the server; throws `NBDError` when they cannot come.
    func read(_ count: Int) async throws -> ByteBuffer
    /// Sends `buffer` to the server.
    func send(_ buffer: ByteBuffer) async throws
    /// Runs the TLS handshake after the server accepted `NBD_OPT_STARTTLS`; from then on
    /// reads and sends go through TLS. Throws `NBDError.tlsFailed` saying what went wrong.
    func startTLS() async throws -> NBDTLSSession
}

/// The socket: `NBDClientHandler` buffers what arrives and answers the reads.
struct ChannelNegotiationTransport: NegotiationTransport {
    let channel: any Channel
    let handler: NIOLoopBound<NBDClientHandler>
    /// How to start TLS, for `nbds` URIs.
    var tls: TLSClientSetup?

    func read(_ count: Int) async throws -> ByteBuffer {
        let handler = self.handler
        let loop = channel.eventLoop
        return try await loop.flatSubmit { handler.value.readNegotiation(count, eventLoop: loop) }.get()
    }

    func send(_ buffer: ByteBuffer) async throws {
        try await channel.writeAndFlush(buffer)
    }

    /// Puts `NIOSSLClientHandler` at the front of the pipeline (with `ServerHelloObserver`
    /// before it, to learn the cipher, and `PlaintextCopier` after it) and waits for its handshake.
    func startTLS() async throws -> NBDTLSSession {
        guard let tls else { throw NBDError.tlsFailed("no TLS settings for this connection") }
        let handler = self.handler
        let channel = self.channel
        let loop = channel.eventLoop
        return try await loop.flatSubmit { () -> EventLoopFuture<NBDTLSSession> in
            let completed = handler.value.expectTLSHandshake(tls, eventLoop: loop)
            let observer = ServerHelloObserver()
            let sslHandler: NIOSSLClientHandler
            do {
                sslHandler = try NIOSSLClientHandler(context: tls.context, serverHostname: tls.serverHostname)
                try channel.pipeline.syncOperations.addHandlers([observer, sslHandler, PlaintextCopier()], position: .first)
            } catch {
                let failure = tls.failure(error)
                handler.value.fail(failure)
                return loop.makeFailedFuture(failure)
            }
            return completed.assumeIsolated().map { () -> NBDTLSSession in
                NBDTLSSession(version: Self.name(of: sslHandler.tlsVersion),
                              cipher: observer.cipherSuite.map(TLSCipherSuiteName.name) ?? "unknown")
            }.nonisolated()
        }.get()
    }

    private static func name(of version: TLSVersion?) -> String {
        switch version {
        case .tlsv1: return "TLSv1.0"
        case .tlsv11: return "TLSv1.1"
        case .tlsv12: return "TLSv1.2"
        case .tlsv13: return "TLSv1.3"
        case nil: return "unknown"
        }
    }
}
