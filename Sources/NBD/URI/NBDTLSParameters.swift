/// The TLS settings an `nbds` URI carries in its query, as libnbd reads them.
///
/// - `tls-certificates=DIR`: `ca-cert.pem` to verify the server, and optionally
///   `client-cert.pem` with `client-key.pem` to present; without it the folder is
///   `$HOME/.pki/libnbd`, then `/etc/pki/libnbd`, then the system's trusted roots.
/// - `tls-verify-peer=false`: encrypt but do not check the server's certificate.
/// - `tls-hostname=NAME`: the name the server's certificate must carry (default: the
///   URI's host; over a Unix socket only the chain is checked unless this is given).
/// - `tls-psk-file=FILE` with `tls-username=NAME`: a pre-shared key instead of certificates.
public struct NBDTLSParameters: Sendable, Equatable {
    public var certificatesDirectory: String?
    public var verifyPeer: Bool
    public var hostname: String?
    public var pskFile: String?
    public var username: String?

    public init(certificatesDirectory: String? = nil, verifyPeer: Bool = true, hostname: String? = nil,
                pskFile: String? = nil, username: String? = nil) {
        self.certificatesDirectory = certificatesDirectory
        self.verifyPeer = verifyPeer
        self.hostname = hostname
        self.pskFile = pskFile
        self.username = username
    }

    /// The query keys this type reads.
    static let keys: Set<String> = ["tls-certificates", "tls-verify-peer", "tls-hostname", "tls-psk-file", "tls-username"]

    /// Reads the `tls-*` keys of a query; `fail` names what is wrong.
    static func parse(_ parameters: [String: String], fail: (String) -> NBDError) throws(NBDError) -> NBDTLSParameters {
        var result = NBDTLSParameters()
        func nonEmpty(_ key: String) throws(NBDError) -> String? {
            guard let value = parameters[key] else { return nil }
            guard !value.isEmpty else { throw fail("\(key)= needs a value") }
            return value
        }
        result.certificatesDirectory = try nonEmpty("tls-certificates")
        result.hostname = try nonEmpty("tls-hostname")
        result.pskFile = try nonEmpty("tls-psk-file")
        result.username = try nonEmpty("tls-username")
        if let verify = parameters["tls-verify-peer"] {
            switch verify.lowercased() {
            case "true", "on", "yes", "1": result.verifyPeer = true
            case "false", "off", "no", "0": result.verifyPeer = false
            default: throw fail("tls-verify-peer= takes true or false, not '\(verify)'")
            }
        }
        if result.username != nil, result.pskFile == nil {
            throw fail("tls-username= goes with tls-psk-file=")
        }
        if result.pskFile != nil, result.certificatesDirectory != nil {
            throw fail("tls-psk-file= and tls-certificates= cannot be used together")
        }
        return result
    }

    /// The query items for the canonical URI, in a fixed order.
    var queryItems: [(String, String)] {
        var items: [(String, String)] = []
        if let certificatesDirectory { items.append(("tls-certificates", certificatesDirectory)) }
        if !verifyPeer { items.append(("tls-verify-peer", "false")) }
        if let hostname { items.append(("tls-hostname", hostname)) }
        if let pskFile { items.append(("tls-psk-file", pskFile)) }
        if let username { items.append(("tls-username", username)) }
        return items
    }
}
