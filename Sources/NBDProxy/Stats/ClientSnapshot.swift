import Telemetry

/// One client connection's figures at one moment.
public struct ClientSnapshot: Sendable, Equatable {
    /// Where the connection is in its life, for the proxy.
    public enum State: String, Sendable {
        /// Connected to the upstream, still haggling.
        case handshake
        case active
        /// Left normally.
        case closed
        /// Closed because a side broke the protocol or went away mid-request.
        case failed
    }

    /// The client connection's number, from 1 in the order they came.
    public var id: Int
    public var client: ClientIdentity
    public var state: State
    /// Why it ended, when it did.
    public var reason: String?
    /// The figures the copy engine also shows (in flight, latency, stalls, slow requests);
    /// its bytes are READ and WRITE data.
    public var connection: ConnectionSnapshot
    public var totalsByKind: [RequestKind: KindTotals]
    /// Failed requests by the server's errno name (`EIO`, ...).
    public var errorsByErrno: [String: Int]
    public var readBytesPerSecond: Double
    public var writeBytesPerSecond: Double
    /// The export's size, once the handshake told it.
    public var exportSize: UInt64?

    public init(id: Int, client: ClientIdentity, state: State, connection: ConnectionSnapshot) {
        self.id = id
        self.client = client
        self.state = state
        self.connection = connection
        self.totalsByKind = [:]
        self.errorsByErrno = [:]
        self.readBytesPerSecond = 0
        self.writeBytesPerSecond = 0
    }

    /// Whether the connection has ended.
    public var hasLeft: Bool { state == .closed || state == .failed }
}
