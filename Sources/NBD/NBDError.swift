/// Everything that can go wrong talking to an NBD server, each case saying what happened.
///
/// Cases are grouped by who is at fault: the user's input (`invalidURI`, `unsupported`),
/// the network (`connectFailed`, `connectionClosed`, `timedOut`), the server refusing
/// something (`optionRefused`, `unknownExport`, `serverError`), the server breaking the
/// protocol (`protocolViolation`), or our own caller asking for something the export does
/// not allow (`invalidRequest`).
public enum NBDError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The URI could not be parsed; `reason` says which part is wrong.
    case invalidURI(String, reason: String)
    /// A valid request for something nbdtop does not do (yet), such as TLS.
    case unsupported(String)
    /// The socket could not be reached.
    case connectFailed(endpoint: String, reason: String)
    /// The server closed the connection or it was reset.
    case connectionClosed(String)
    /// The server did not answer in time.
    case timedOut(String)
    /// The server answered an option with an error reply.
    case optionRefused(option: NBDOption, reply: String, message: String)
    /// The server does not have the export that was asked for.
    case unknownExport(name: String, message: String)
    /// The server answered a request with an error.
    case serverError(command: NBDCommandType, offset: UInt64, length: UInt64, errno: NBDErrno, message: String)
    /// The server sent something the protocol does not allow.
    case protocolViolation(String)
    /// The caller asked for something the export or the protocol does not allow.
    case invalidRequest(String)
    /// TLS could not be set up or started; `what` says how far the handshake got.
    case tlsFailed(String)

    /// Whether this is the user's fault (usage, exit status 2) rather than a failure.
    public var isUsageError: Bool {
        switch self {
        case .invalidURI, .unsupported: return true
        default: return false
        }
    }

    public var description: String {
        switch self {
        case .invalidURI(let uri, let reason):
            return "invalid NBD URI '\(uri)': \(reason)"
        case .unsupported(let what):
            return what
        case .connectFailed(let endpoint, let reason):
            return "cannot connect to \(endpoint): \(reason)"
        case .connectionClosed(let what):
            return "connection closed: \(what)"
        case .timedOut(let what):
            return "timed out: \(what)"
        case .optionRefused(let option, let reply, let message):
            let detail = message.isEmpty ? "" : ": \(message)"
            return "server refused \(option) (\(reply))\(detail)"
        case .unknownExport(let name, let message):
            let detail = message.isEmpty ? "" : ": \(message)"
            return "server has no export named '\(name)'\(detail)"
        case .serverError(let command, let offset, let length, let errno, let message):
            let detail = message.isEmpty ? "" : ": \(message)"
            return "\(command) of \(length) bytes at offset \(offset) failed: \(errno)\(detail)"
        case .protocolViolation(let what):
            return "server broke the NBD protocol: \(what)"
        case .invalidRequest(let what):
            return "invalid request: \(what)"
        case .tlsFailed(let what):
            return "TLS: \(what)"
        }
    }
}
