/// What a TLS handshake with the server settled on.
public struct NBDTLSSession: Sendable, Equatable {
    /// The protocol version, e.g. `TLSv1.3`.
    public var version: String
    /// The cipher suite's IANA name, e.g. `TLS_AES_256_GCM_SHA384` (or its hex code point).
    public var cipher: String

    public init(version: String, cipher: String) {
        self.version = version
        self.cipher = cipher
    }

    /// `TLSv1.3 TLS_AES_256_GCM_SHA384`, for one-line reports.
    public var summary: String { "\(version) \(cipher)" }
}
