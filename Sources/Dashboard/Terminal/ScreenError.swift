/// Why the full-screen terminal could not be started.
public enum ScreenError: Error, Sendable, CustomStringConvertible {
    /// ncurses could not set up the terminal (TERM unset, unknown or `dumb`).
    case cannotStart(terminal: String?)
    /// Standard input or output is not a terminal.
    case notATerminal

    public var description: String {
        switch self {
        case .cannotStart(let terminal):
            return "cannot start the dashboard on terminal type '\(terminal ?? "(TERM not set)")'; use --no-tui"
        case .notATerminal:
            return "the dashboard needs a terminal on standard input and output; use --no-tui"
        }
    }
}
