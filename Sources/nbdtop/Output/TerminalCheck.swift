import Dashboard
#if canImport(Glibc)
import Glibc
#endif

/// Whether a full-screen display can be used: stdin and stdout a terminal, and a `TERM`
/// that is set and not `dumb`.
enum TerminalCheck {
    /// Why not, or nil when it can.
    static func obstacle() -> String? {
        let term = ProcessEnvironment.current()["TERM"] ?? ""
        if isatty(0) != 1 || isatty(1) != 1 { return "stdin and stdout must be a terminal" }
        if term.isEmpty || term == "dumb" { return "TERM is \(term.isEmpty ? "not set" : "dumb")" }
        return nil
    }
}
