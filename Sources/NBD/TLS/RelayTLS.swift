import NIOCore
import NIOSSL
import NIOTLS

/// TLS towards the server for a relay that opens a connection of its own per client and
/// starts TLS on it itself (`RelayDecoder(upstreamTLS:)`).
///
/// The certificates or key the `nbds` URI names are read once, by `make`; each connection
/// then only inserts a handler, and its failures are worded as `nbdtop info` words them.
public struct RelayTLS: Sendable {
    let setup: TLSClientSetup

    /// Reads what `uri`'s `tls-*` parameters name, on NIO's blocking pool; throws `NBDError.tlsFailed`.
    public static func make(for uri: NBDURI) async throws -> RelayTLS {
        RelayTLS(setup: try await TLSClientSetup.make(for: uri))
    }

    /// Puts `NIOSSLClientHandler` at the front of `channel`'s pipeline, which starts the
    /// handshake; on the channel's event loop, once the server accepted `NBD_OPT_STARTTLS`.
    /// The handlers behind it then read and write plaintext (each read a buffer of its own).
    public func start(on channel: any Channel) throws(NBDError) {
        do {
            let handler = try NIOSSLClientHandler(context: setup.context, serverHostname: setup.serverHostname)
            // Relayed bytes wait in the client's socket queue: see `PlaintextCopier`.
            try channel.pipeline.syncOperations.addHandlers([handler, PlaintextCopier()], position: .first)
        } catch {
            throw setup.failure(error)
        }
    }

    /// Whether `event` (a user inbound event) says the handshake is done.
    public static func isHandshakeCompleted(_ event: Any) -> Bool {
        if case .handshakeCompleted? = event as? TLSUserEvent { return true }
        return false
    }

    /// Why the handshake did not finish: the pipeline's `error`, or nil when the server hung up.
    public func handshakeFailure(_ error: (any Error)?) -> NBDError {
        error.map(setup.failure) ?? setup.closedDuringHandshake
    }

    /// What the server's refusal of `NBD_OPT_STARTTLS` (`replyType`, with `message`) means.
    public static func refused(replyType: UInt32, message: String) -> NBDError {
        TLSClientSetup.refused(replyType: replyType, message: message)
    }
}
