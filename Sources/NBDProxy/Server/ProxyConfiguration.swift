import NBD

/// What a proxy listens on, where it relays to, and its thresholds.
public struct ProxyConfiguration: Sendable {
    /// Bound exactly as given: a non-loopback address only when asked for.
    public var listen: NBDURI.Transport
    /// The upstream server's socket; each client connection gets its own connection to it.
    public var upstream: NBDURI.Transport
    /// For an `nbds` upstream: the proxy starts TLS on each upstream connection itself,
    /// before the client's first option; clients speak plaintext to the proxy.
    public var upstreamTLS: RelayTLS?
    /// nil thresholds are adaptive, as in a copy.
    public var stallThreshold: Duration?
    public var slowThreshold: Duration?
    /// Departed clients kept in snapshots, the oldest dropped first.
    public var maximumDepartedClients = 64

    public init(listen: NBDURI.Transport, upstream: NBDURI.Transport, upstreamTLS: RelayTLS? = nil,
                stallThreshold: Duration? = nil, slowThreshold: Duration? = nil) {
        self.listen = listen
        self.upstream = upstream
        self.upstreamTLS = upstreamTLS
        self.stallThreshold = stallThreshold
        self.slowThreshold = slowThreshold
    }
}
