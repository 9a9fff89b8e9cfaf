import Telemetry

/// Something that happened in the proxy, as it happened.
public enum ProxyEvent: Sendable {
    /// A client connected and its upstream connection is open.
    case clientConnected(id: Int, client: ClientIdentity)
    /// A client connection ended; `failed` when a side broke the protocol or went away
    /// with requests in flight, `reason` says which.
    case clientLeft(id: Int, client: ClientIdentity, failed: Bool, reason: String)
    /// A client was turned away: the upstream could not be reached.
    case clientRefused(client: ClientIdentity, reason: String)
    /// A stall episode was recognised on a client connection.
    case stall(id: Int, oldestAge: Duration, held: Int)
    /// A slow request completed on a client connection.
    case slowRequest(id: Int, kind: RequestKind, offset: UInt64, length: UInt64, latency: Duration)
}
