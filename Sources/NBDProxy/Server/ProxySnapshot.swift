/// The proxy's figures at one moment: every client connection, those that left included.
public struct ProxySnapshot: Sendable {
    /// Time since the proxy started listening.
    public var elapsed: Duration
    /// Client connections in the order they came; departed ones keep their last figures.
    public var clients: [ClientSnapshot]
    /// Which parts of the export clients read and wrote; nil before any client opened one.
    public var coverage: CoverageMap?

    /// Clients connected now.
    public var activeClients: Int { clients.count { !$0.hasLeft } }
    /// READ and WRITE data relayed so far, over every client.
    public var bytesRelayed: UInt64 { clients.reduce(0) { $0 + $1.connection.bytes } }
    /// The sum of the clients' rates.
    public var bytesPerSecond: Double { clients.reduce(0) { $0 + $1.connection.bytesPerSecond } }
}
