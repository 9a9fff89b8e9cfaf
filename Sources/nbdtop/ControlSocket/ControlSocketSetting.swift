import Control
#if canImport(Glibc)
import Glibc
#endif

/// Where a copy's or a proxy's control socket goes: `--control PATH`, `--no-control`, or
/// the default folder.
enum ControlSocketSetting: Sendable, Equatable {
    case standard
    case path(String)
    case off

    /// The socket's path, and that of the result file left beside it when the transfer
    /// ends; nil when off, or (after saying why on stderr) when the default folder cannot
    /// be used: the transfer then runs without a control socket.
    func resolvedPaths() -> (socket: String, result: String)? {
        let socketPath: String
        switch self {
        case .off: return nil
        case .path(let path): socketPath = path
        case .standard:
            let directory = ControlDirectory.standard
            do {
                try directory.prepare()
            } catch {
                printError("nbdtop: no control socket: \(error)")
                return nil
            }
            socketPath = directory.socketPath(pid: getpid())
        }
        let folder = socketPath.contains("/") ? String(socketPath[..<socketPath.lastIndex(of: "/")!]) : "."
        return (socketPath, "\(folder)/\(getpid()).result.json")
    }
}
