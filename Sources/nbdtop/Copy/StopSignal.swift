#if canImport(Glibc)
import Glibc
#endif

/// A signal that stops a copy cleanly, and the exit status it ends with: 128 + its number,
/// as a shell reports a program that the signal killed.
enum StopSignal: Sendable, CaseIterable {
    /// SIGINT: Ctrl-C.
    case interrupt
    /// SIGTERM: `kill`, service managers.
    case terminate
    /// SIGHUP: the terminal went away.
    case hangUp

    var number: Int32 {
        switch self {
        case .interrupt: return SIGINT
        case .terminate: return SIGTERM
        case .hangUp: return SIGHUP
        }
    }

    /// 130, 143 or 129.
    var exitStatus: Int32 { 128 + number }

    /// How the copy ended, for messages: "interrupted", "stopped by SIGTERM".
    var stopped: String { self == .interrupt ? "interrupted" : "stopped by \(name)" }

    /// For messages: "Ctrl-C", "SIGTERM", "SIGHUP".
    var name: String {
        switch self {
        case .interrupt: return "Ctrl-C"
        case .terminate: return "SIGTERM"
        case .hangUp: return "SIGHUP"
        }
    }
}
