import NIOCore

/// Follows both directions of one NBD connection that a relay passes through: the
/// handshake (options and their replies) and then transmission (requests and simple or
/// structured replies).
///
/// The decoder is pure: it is given the bytes each side sent and returns, in order, the
/// bytes to pass on (slices of its input, never copies of payloads) and what it saw. It
/// keeps only headers that arrived split, the requests in flight (at most
/// `maximumRequestsInFlight`) and the options not answered yet (at most
/// `maximumPendingOptions`); payloads of any announced length are passed on as they come,
/// so nothing either side sends makes it buffer without bound.
///
/// Two options cannot be followed from the middle, so they are not passed on: the decoder
/// answers `NBD_OPT_STARTTLS` with `NBD_REP_ERR_POLICY` and `NBD_OPT_EXTENDED_HEADERS` with
/// `NBD_REP_ERR_UNSUP` itself, in order with the server's replies to the options around them.
///
/// With `upstreamTLS` the relay is the TLS client towards the server: after the client's
/// flags it asks the server for `NBD_OPT_STARTTLS` itself and holds what the client sends
/// until `upstreamTLSEstablished` (the relay's TLS handshake is done) or `turnAwayClient`
/// (the server refused or the handshake failed: every option the client then sends gets
/// `NBD_REP_ERR_POLICY` with the reason, and nothing reaches the server in the clear).
public struct RelayDecoder {
    /// Options answered by the relay, with the error reply it gives.
    public static let answeredByRelay: [UInt32: UInt32] = [
        NBDOption.startTLS.rawValue: NBDOptionReplyType.policy,
        extendedHeadersOption: NBDOptionReplyType.unsupported,
    ]
    /// `NBD_OPT_EXTENDED_HEADERS`, which nbdtop's client never sends.
    public static let extendedHeadersOption: UInt32 = 11
    /// Requests a client may have in flight before it is cut off; a relay stops reading
    /// the client well before (`wantsClientBytes`).
    public static let maximumRequestsInFlight = 65_536
    /// Requests in flight above which `wantsClientBytes` is false.
    public static let requestsInFlightToPause = 4_096
    /// Options a client may send ahead of their answers.
    public static let maximumPendingOptions = 64
    /// Bytes a client may send before the server answered what it needs answered first.
    public static let maximumHeldClientBytes = 1 << 20
    /// Options a turned-away client may send before it is cut off.
    public static let maximumRefusedOptions = 16
    /// Longest answer to the relay's own `NBD_OPT_STARTTLS` (an error's message).
    static let maximumRelayOptionReply = 4096
    /// What the relay answers every option with once it turned a client away.
    static let refusalReplyType = NBDOptionReplyType.policy

    enum ClientState {
        /// Before the server's greeting, and after GO or EXPORT_NAME until it is answered:
        /// what the client sends means something only once the server has spoken.
        case waitingForServer
        case clientFlags
        case optionHeader
        case optionData(remaining: Int, passOn: Bool)
        case requestHeader
        case writePayload(remaining: Int)
        /// After NBD_CMD_DISC or NBD_OPT_ABORT: nothing more may come.
        case finished
    }

    enum ServerState {
        case greeting
        case handshakeFlags
        case oldstyleExport
        case padding(remaining: Int)
        case optionReplyHeader
        case optionReplyData(remaining: Int)
        case exportInfo(remaining: Int)
        case exportNameReply
        /// The data of the server's answer to the relay's own option.
        case relayOptionReplyData(length: Int)
        /// The server accepted the relay's `NBD_OPT_STARTTLS`; nothing may come in the clear.
        case startingTLS
        case replyHeader
        case simpleReadPayload(cookie: UInt64, remaining: Int)
        case chunkErrno(cookie: UInt64, flags: UInt16, remaining: Int)
        case chunkPayload(cookie: UInt64, flags: UInt16, remaining: Int)
        case finished
    }

    enum PendingOption {
        case passedOn(UInt32)
        case answeredByRelay(UInt32, replyType: UInt32)
        /// Sent by the relay itself (`NBD_OPT_STARTTLS` with `upstreamTLS`); its reply is not passed on.
        case askedByRelay(UInt32)
    }

    struct InFlight {
        var request: RelayedRequest
        var error: NBDErrno?
    }

    var clientState = ClientState.waitingForServer
    var serverState = ServerState.greeting
    var clientHeader = HeaderGatherer()
    var serverHeader = HeaderGatherer()
    /// Client bytes that came while `waitingForServer`.
    var heldClientBytes: ByteBuffer?
    var pendingOptions: [PendingOption] = []
    var inFlight: [UInt64: InFlight] = [:]
    var clientNoZeroes = false
    var exportSize: UInt64?
    var transmissionFlags: UInt16?
    /// The type of the option reply being passed on.
    var replyType: UInt32 = 0
    /// Whether the relay starts TLS towards the server before passing options on.
    let upstreamTLS: Bool
    /// Why the client is being turned away, once it is: every option it sends is refused with this.
    var refusal: String?
    var refusedOptions = 0

    public init(upstreamTLS: Bool = false) {
        self.upstreamTLS = upstreamTLS
    }

    /// Whether the relay should read more from the client now: not while the decoder
    /// waits for the server, nor while many requests are in flight.
    public var wantsClientBytes: Bool {
        if case .waitingForServer = clientState { return false }
        return inFlight.count < Self.requestsInFlightToPause
    }


    /// Whether the client ended the connection (NBD_CMD_DISC or NBD_OPT_ABORT).
    public var clientDisconnected: Bool {
        if case .finished = clientState { return true }
        return false
    }

    /// Requests sent and not answered yet.
    public var requestsInFlight: Int { inFlight.count }

    /// Decodes bytes the client sent.
    public mutating func clientSent(_ buffer: ByteBuffer) throws(RelayViolation) -> [RelayEvent] {
        var events: [RelayEvent] = []
        var buffer = buffer
        try decodeClient(&buffer, into: &events)
        try serverAtOptionBoundary(into: &events)
        return events
    }

    /// Decodes bytes the server sent.
    public mutating func serverSent(_ buffer: ByteBuffer) throws(RelayViolation) -> [RelayEvent] {
        var events: [RelayEvent] = []
        var buffer = buffer
        try decodeServer(&buffer, into: &events)
        return events
    }

    /// The relay's TLS handshake with the server is done: the client's options go on, inside TLS.
    public mutating func upstreamTLSEstablished() throws(RelayViolation) -> [RelayEvent] {
        var events: [RelayEvent] = []
        serverState = .optionReplyHeader
        try resumeClient(.optionHeader, into: &events)
        try serverAtOptionBoundary(into: &events)
        return events
    }

    /// The server cannot be reached the way the client must be served (it refused TLS, or
    /// the handshake failed): from now on every option the client sends is answered with
    /// `NBD_REP_ERR_POLICY` carrying `reason`, until `clientTurnedAway`. Only before any
    /// option of the client was passed on.
    public mutating func turnAwayClient(_ reason: String) throws(RelayViolation) -> [RelayEvent] {
        var events: [RelayEvent] = []
        refusal = reason
        pendingOptions.removeAll()
        serverHeader = HeaderGatherer()
        serverState = .optionReplyHeader
        try resumeClient(.optionHeader, into: &events)
        try serverAtOptionBoundary(into: &events)
        return events
    }

    /// The option reply the relay sends for an option it does not pass on.
    static func relayReply(option: UInt32, replyType: UInt32, message: String = "") -> ByteBuffer {
        var reply = ByteBuffer()
        reply.writeInteger(NBDMagic.optionReply)
        reply.writeInteger(option)
        reply.writeInteger(replyType)
        reply.writeInteger(UInt32(message.utf8.count))
        reply.writeString(message)
        return reply
    }
}
