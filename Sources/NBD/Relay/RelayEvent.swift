import NIOCore

/// A transmission request seen on its way from a client to its server.
public struct RelayedRequest: Sendable, Equatable {
    /// nil for a command type the protocol does not define (relayed all the same).
    public var type: NBDCommandType?
    public var flags: NBDCommandFlags
    public var cookie: UInt64
    public var offset: UInt64
    public var length: UInt32

    public init(type: NBDCommandType?, flags: NBDCommandFlags = [], cookie: UInt64, offset: UInt64, length: UInt32) {
        self.type = type
        self.flags = flags
        self.cookie = cookie
        self.offset = offset
        self.length = length
    }
}

/// What `RelayDecoder` found in the bytes between a client and its server, in stream order.
public enum RelayEvent: Sendable {
    /// Bytes to pass on to the server, unchanged: slices of what the client sent.
    case toServer(ByteBuffer)
    /// Bytes to pass on to the client: slices of what the server sent, or the relay's own
    /// answer to an option it cannot pass on.
    case toClient(ByteBuffer)
    /// The client sent this option (passed on).
    case optionSent(code: UInt32)
    /// The relay answered this option itself (`NBD_OPT_STARTTLS`, `NBD_OPT_EXTENDED_HEADERS`).
    case optionAnsweredByRelay(code: UInt32, replyType: UInt32)
    /// The handshake ended: transmission begins on this export.
    case transmissionStarted(exportSize: UInt64?, transmissionFlags: UInt16?)
    /// The client sent a request (passed on).
    case requestSent(RelayedRequest)
    /// The server answered a request completely; `error` is its first error, if any.
    case replyReceived(RelayedRequest, error: NBDErrno?)
    /// The server accepted the relay's `NBD_OPT_STARTTLS`: the relay must start its TLS
    /// handshake before anything more goes to the server, then call `upstreamTLSEstablished`.
    case upstreamTLSAccepted
    /// The server refused the relay's `NBD_OPT_STARTTLS` with this error reply.
    case upstreamTLSRefused(replyType: UInt32, message: String)
    /// A turned-away client sent EXPORT_NAME or ABORT, or too many options: close it.
    case clientTurnedAway
}

/// Which end of a relayed connection broke the protocol.
public enum RelaySide: String, Sendable {
    case client, server
}

/// Bytes the relay cannot follow: the connection pair must be closed.
public struct RelayViolation: Error, Sendable, Equatable, CustomStringConvertible {
    public var side: RelaySide
    public var message: String

    public init(_ side: RelaySide, _ message: String) {
        self.side = side
        self.message = message
    }

    public var description: String { "\(side) broke the NBD protocol: \(message)" }
}
