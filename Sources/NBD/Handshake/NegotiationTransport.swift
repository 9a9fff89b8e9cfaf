import NIOCore

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
}

/// The socket: `NBDClientHandler` buffers what arrives and answers the reads.
struct ChannelNegotiationTransport: NegotiationTransport {
    let channel: any Channel
    let handler: NIOLoopBound<NBDClientHandler>

    func read(_ count: Int) async throws -> ByteBuffer {
        let handler = self.handler
        let loop = channel.eventLoop
        return try await loop.flatSubmit { handler.value.readNegotiation(count, eventLoop: loop) }.get()
    }

    func send(_ buffer: ByteBuffer) async throws {
        try await channel.writeAndFlush(buffer)
    }
}
