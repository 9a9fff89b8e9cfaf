import NIOCore

/// Runs the client's real handshake against recorded server bytes, without a socket.
///
/// The fuzzers and the corpus tests drive negotiation through this. The input's first
/// byte says what the client asks for (`Mode`); the rest is everything the server sends,
/// in order. What the client sends is discarded. A read past the end fails as if the
/// server had hung up, so every input ends the handshake one way or another.
package enum HandshakeReplay {
    /// What one handshake ended with.
    package enum Result: Sendable, Equatable {
        case connected(NBDExportInfo)
        case listed([NBDExportListing])
        case failed(NBDError)
    }

    /// How one handshake went.
    package struct Outcome: Sendable {
        package var result: Result
        /// Breaches of the hostile-input policy (an untyped error, an oversized read);
        /// empty when the client behaved.
        package var violations: [String]
    }

    /// What the client asks for, from the input's first byte.
    ///
    /// Bit 0: list the exports instead of choosing one. Bit 1: do not ask for structured
    /// replies. Bit 2: also list the meta contexts (as `nbdtop info` does). Bit 3: select
    /// no meta context. Other bits are ignored.
    struct Mode {
        var listing: Bool
        var options = NBDConnection.Options()

        init(_ byte: UInt8) {
            listing = byte & 1 != 0
            options.structuredReplies = byte & 2 == 0
            options.listMetaContexts = byte & 4 != 0
            if byte & 8 != 0 { options.metaContexts = [] }
        }
    }

    /// Replays `input`: a mode byte, then the server's bytes.
    package static func run(_ input: [UInt8]) async -> Outcome {
        guard let modeByte = input.first else {
            return Outcome(result: .failed(.connectionClosed("empty input")), violations: [])
        }
        let mode = Mode(modeByte)
        let server = RecordedServer(ByteBuffer(bytes: input.dropFirst()))
        let negotiator = Negotiator(transport: server, uri: NBDURI(transport: .unix(path: "replay.sock")))
        var violations: [String] = []
        let result: Result
        do {
            if mode.listing {
                result = .listed(try await negotiator.negotiateListing())
            } else {
                result = .connected(try await negotiator.negotiateExport(options: mode.options))
            }
        } catch let error as NBDError {
            result = .failed(error)
        } catch {
            result = .failed(.connectionClosed("\(error)"))
            violations.append("handshake failed with an error that is not an NBDError: \(error)")
        }
        violations += await server.violations
        return Outcome(result: result, violations: violations)
    }
}

/// The server side of a replayed handshake: reads come from the recording, writes vanish.
private actor RecordedServer: NegotiationTransport {
    private var bytes: ByteBuffer
    private(set) var violations: [String] = []

    init(_ bytes: ByteBuffer) {
        self.bytes = bytes
    }

    func read(_ count: Int) throws -> ByteBuffer {
        // A read is a promise to buffer that many bytes: more than the largest option reply
        // means a length from the server went unchecked.
        guard count <= Negotiator.maximumOptionReply else {
            violations.append("negotiation read of \(count) bytes, more than \(Negotiator.maximumOptionReply)")
            throw NBDError.protocolViolation("oversized negotiation read")
        }
        guard let slice = bytes.readSlice(length: count) else {
            throw NBDError.connectionClosed("server closed the connection during the handshake")
        }
        return slice
    }

    func send(_ buffer: ByteBuffer) {}

    func startTLS() throws -> NBDTLSSession {
        throw NBDError.tlsFailed("a replayed handshake has no TLS")
    }
}
