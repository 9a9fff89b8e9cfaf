/// Where an NBD export is: parsed from an NBD URI (`doc/uri.md`) or a bare socket path.
///
/// Accepted forms:
/// - `nbd://host[:port]/export` (TCP, port 10809 by default; IPv6 hosts in brackets)
/// - `nbd+unix:///export?socket=PATH`
/// - `/path/to/socket` or `./socket`: a Unix socket, default export (for convenience)
/// - `nbds://...` and `nbds+unix://...`: the same over TLS, with the `tls-*` query
///   parameters of `NBDTLSParameters` (ignored by the plaintext schemes, as libnbd does).
public struct NBDURI: Sendable, Equatable, CustomStringConvertible {
    /// How to reach the server.
    public enum Transport: Sendable, Equatable {
        case tcp(host: String, port: Int)
        case unix(path: String)

        /// Whether the server is on this machine: a Unix socket, or TCP to a loopback
        /// address or `localhost`. Any other host name counts as elsewhere: resolving it
        /// again for a hint is not worth a lookup.
        public var isOnThisMachine: Bool {
            switch self {
            case .unix: return true
            case .tcp(let host, _):
                var bare = host.lowercased()
                if bare.hasPrefix("["), bare.hasSuffix("]") { bare = String(bare.dropFirst().dropLast()) }
                return bare == "localhost" || bare == "::1" || bare.hasPrefix("127.")
            }
        }
    }

    public var transport: Transport
    /// The export name, percent-decoded, without the leading slash.
    public var exportName: String
    /// Whether the URI asks for TLS (`nbds` schemes).
    public var tls: Bool
    /// How to set up TLS; only read when `tls` is set.
    public var tlsParameters: NBDTLSParameters
    /// The text the URI was parsed from, for messages.
    public var text: String

    public static let defaultPort = 10809
    /// The longest export name the protocol allows, in bytes.
    public static let maximumExportNameLength = 4096

    public init(transport: Transport, exportName: String = "", tls: Bool = false,
                tlsParameters: NBDTLSParameters = NBDTLSParameters(), text: String? = nil) {
        self.transport = transport
        self.exportName = exportName
        self.tls = tls
        self.tlsParameters = tlsParameters
        self.text = text ?? Self.format(transport: transport, exportName: exportName, tls: tls, tlsParameters: tlsParameters)
    }

    public var description: String { text }

    /// A short name for the socket, for error messages (`unix socket /x`, `host:port`).
    public var endpointDescription: String {
        switch transport {
        case .unix(let path): return "unix socket \(path)"
        case .tcp(let host, let port):
            return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        }
    }

    /// The canonical URI for this location, as nbdinfo prints it.
    public var canonical: String { Self.format(transport: transport, exportName: exportName, tls: tls, tlsParameters: tlsParameters) }

    /// The same server with another export name (for `info --list`).
    public func withExportName(_ name: String) -> NBDURI {
        NBDURI(transport: transport, exportName: name, tls: tls, tlsParameters: tlsParameters)
    }

    /// Parses `text`, throwing `NBDError.invalidURI` that names the part that is wrong.
    public static func parse(_ text: String) throws(NBDError) -> NBDURI {
        func fail(_ reason: String) -> NBDError { .invalidURI(text, reason: reason) }
        guard !text.isEmpty else { throw fail("empty") }

        guard let schemeEnd = firstRange(of: "://", in: text) else {
            if text.hasPrefix("/") || text.hasPrefix("./") || text.hasPrefix("../") {
                return NBDURI(transport: .unix(path: text), text: text)
            }
            throw fail("expected nbd://, nbd+unix://, nbds://, nbds+unix:// or a socket path starting with / or ./")
        }
        let scheme = text[..<schemeEnd.lowerBound].lowercased()
        var rest = Substring(text[schemeEnd.upperBound...])

        let isUnix: Bool
        let tls: Bool
        switch scheme {
        case "nbd": (isUnix, tls) = (false, false)
        case "nbds": (isUnix, tls) = (false, true)
        case "nbd+unix": (isUnix, tls) = (true, false)
        case "nbds+unix": (isUnix, tls) = (true, true)
        case "nbd+vsock", "nbds+vsock": throw fail("vsock transport is not supported")
        default: throw fail("unknown scheme '\(scheme)'")
        }

        if let hash = rest.firstIndex(of: "#") { rest = rest[..<hash] }
        var query: Substring = ""
        if let question = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: question)...]
            rest = rest[..<question]
        }
        let authority: Substring
        let path: Substring
        if let slash = rest.firstIndex(of: "/") {
            authority = rest[..<slash]
            path = rest[rest.index(after: slash)...]
        } else {
            authority = rest
            path = ""
        }
        guard !authority.contains("@") else { throw fail("user names are not supported") }

        guard let exportName = percentDecode(path) else { throw fail("bad percent-encoding in export name") }
        guard exportName.utf8.count <= maximumExportNameLength else {
            throw fail("export name is longer than \(maximumExportNameLength) bytes")
        }

        var parameters: [String: String] = [:]
        for pair in query.split(whereSeparator: { $0 == "&" || $0 == ";" }) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let key = percentDecode(parts[0]),
                  let value = parts.count > 1 ? percentDecode(parts[1]) : ""
            else { throw fail("bad percent-encoding in query") }
            parameters[key] = value
        }

        let transport: Transport
        if isUnix {
            guard authority.isEmpty else {
                throw fail("a Unix socket URI has no host (write nbd+unix:///export?socket=PATH)")
            }
            guard let socket = parameters["socket"], !socket.isEmpty else {
                throw fail("missing socket= parameter")
            }
            transport = .unix(path: socket)
        } else {
            guard parameters["socket"] == nil else { throw fail("socket= only goes with nbd+unix://") }
            transport = try parseHostPort(authority, fail: fail)
        }
        let tlsParameters = tls ? try NBDTLSParameters.parse(parameters, fail: fail) : NBDTLSParameters()
        return NBDURI(transport: transport, exportName: exportName, tls: tls, tlsParameters: tlsParameters, text: text)
    }

    private static func parseHostPort(_ authority: Substring, fail: (String) -> NBDError) throws(NBDError) -> Transport {
        var host: Substring
        var portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { throw fail("unclosed '[' in IPv6 host") }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw fail("unexpected text after IPv6 host") }
                portText = after.dropFirst()
            }
            guard host.contains(":") else { throw fail("brackets are for IPv6 addresses only") }
        } else if let colon = authority.firstIndex(of: ":") {
            host = authority[..<colon]
            portText = authority[authority.index(after: colon)...]
        } else {
            host = authority
        }
        guard let decodedHost = percentDecode(host) else { throw fail("bad percent-encoding in host") }
        let finalHost = decodedHost.isEmpty ? "localhost" : decodedHost
        var port = defaultPort
        if let portText {
            guard let value = Int(portText), (1...65535).contains(value) else {
                throw fail("port '\(portText)' is not a number from 1 to 65535")
            }
            port = value
        }
        return .tcp(host: finalHost, port: port)
    }

    private static func firstRange(of needle: String, in text: String) -> Range<String.Index>? {
        var start = text.startIndex
        while start < text.endIndex {
            if text[start...].hasPrefix(needle) {
                return start..<text.index(start, offsetBy: needle.count)
            }
            start = text.index(after: start)
        }
        return nil
    }

    /// Decodes `%XX` escapes; nil when an escape is malformed or the bytes are not UTF-8.
    static func percentDecode(_ text: Substring) -> String? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = iterator.next().flatMap(HexDigit.value), let low = iterator.next().flatMap(HexDigit.value) else {
                return nil
            }
            bytes.append(high << 4 | low)
        }
        return String(validating: bytes, as: UTF8.self)
    }

    /// Percent-encodes everything but unreserved characters and `/`.
    static func percentEncode(_ text: String, keepingSlash: Bool) -> String {
        var result = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."),
                 UInt8(ascii: "_"), UInt8(ascii: "~"):
                result.unicodeScalars.append(Unicode.Scalar(byte))
            case UInt8(ascii: "/") where keepingSlash:
                result.append("/")
            default:
                let hex = String(byte, radix: 16, uppercase: true)
                result += "%" + (hex.count == 1 ? "0" + hex : hex)
            }
        }
        return result
    }

    private static func format(transport: Transport, exportName: String, tls: Bool, tlsParameters: NBDTLSParameters) -> String {
        let export = percentEncode(exportName, keepingSlash: true)
        var query: [(String, String)] = []
        let base: String
        switch transport {
        case .unix(let path):
            base = "\(tls ? "nbds" : "nbd")+unix:///\(export)"
            query.append(("socket", path))
        case .tcp(let host, let port):
            let hostText = host.contains(":") ? "[\(host)]" : host
            let portText = port == defaultPort ? "" : ":\(port)"
            base = "\(tls ? "nbds" : "nbd")://\(hostText)\(portText)/\(export)"
        }
        if tls { query += tlsParameters.queryItems }
        guard !query.isEmpty else { return base }
        return base + "?" + query.map { "\($0.0)=\(percentEncode($0.1, keepingSlash: true))" }.joined(separator: "&")
    }
}
