import ArgumentParser
import NBD
import NBDCopy

#if canImport(Glibc)
import Glibc
#endif

/// The `nbdtop` command: subcommands, and exit statuses that scripts can rely on. Alone on
/// a terminal it is the live list of running copies (`AttachCommand.session`).
///
/// Exit status: 0 success, 1 the operation failed, 2 usage error (bad flag, bad URI); a
/// copy stopped by a signal exits 128 + its number (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP;
/// SIGHUP with the dashboard up does not stop the copy: its terminal went away).
/// swift-argument-parser would use 64 for usage errors, so errors are mapped here.
@main
struct NBDTop: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nbdtop",
        abstract: "Copy disk images between NBD endpoints over many connections, and show what the transfer is doing.",
        discussion: """
            With no arguments, on a terminal: a live list of the running copies; Enter attaches to the selected one.
            Shell completions: nbdtop --generate-completion-script bash|zsh|fish. Manual: man nbdtop.
            """,
        subcommands: [CopyCommand.self, AttachCommand.self, InfoCommand.self, DemoCommand.self, ListCommand.self, ProxyCommand.self]
    )

    @Flag(name: [.customShort("V"), .customLong("version")], help: "Print the version and exit.")
    var version = false

    /// `nbdtop --version`; anything else without a command is the help.
    func run() async throws {
        guard version else { throw CleanExit.helpRequest(self) }
        print("nbdtop \(NBDTopVersion.current)")
    }

    static func main() async {
        // A closed stdout or socket must be an EPIPE error we report, not a silent death.
        signal(SIGPIPE, SIG_IGN)
        HeapPolicy.keepFreedBuffersMapped(glibcTunables: getenv("GLIBC_TUNABLES").map { String(cString: $0) })
        if NBDCopyPersonality.isSelected(by: CommandLine.arguments.first ?? "") {
            await NBDCopyPersonality.main(Array(CommandLine.arguments.dropFirst()))
        }
        do {
            // `nbdtop` alone on a terminal: the live list of running copies.
            if CommandLine.arguments.count == 1 && TerminalCheck.obstacle() == nil {
                try await AttachCommand.session(socket: nil, theme: nil)
                return
            }
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exit(reporting: error)
        }
    }

    /// Prints one clear line for `error` and exits with the documented status.
    static func exit(reporting error: any Error) -> Never {
        if let nbdError = error as? NBDError {
            printError("nbdtop: \(nbdError)")
            Glibc.exit(nbdError.isUsageError ? 2 : 1)
        }
        let code = exitCode(for: error)
        if code == .success {
            print(fullMessage(for: error))
            Glibc.exit(0)
        }
        var message = fullMessage(for: error)
        if message.hasPrefix("Error: ") { message.removeFirst("Error: ".count) }
        if code == .validationFailure {
            // One line for what was wrong and one for where help is, not the parser's usage.
            var brief = self.message(for: error)
            if brief.hasPrefix("Error: ") { brief.removeFirst("Error: ".count) }
            printError("nbdtop: \(brief)")
            // A typed option's bad value: its help says what it takes.
            if let help = message.split(separator: "\n").first(where: { $0.hasPrefix("Help:") }) { printError(String(help)) }
            printError("Run '\(helpCommand(in: message)) --help' for usage.")
            Glibc.exit(2)
        }
        if !message.isEmpty { printError("nbdtop: \(message)") }
        Glibc.exit(code.rawValue == 0 ? 1 : code.rawValue)
    }
}

/// The command whose help a parser message points to ("nbdtop copy" from its
/// "See 'nbdtop copy --help'"), or "nbdtop".
func helpCommand(in parserMessage: String) -> String {
    for line in parserMessage.split(separator: "\n") {
        let trimmed = line.drop(while: { $0 == " " })
        guard trimmed.hasPrefix("See '") else { continue }
        let quoted = trimmed.dropFirst("See '".count)
        guard let quote = quoted.firstIndex(of: "'") else { continue }
        let command = quoted[..<quote]
        guard command.hasSuffix(" --help") else { continue }
        return String(command.dropLast(" --help".count))
    }
    return "nbdtop"
}

/// Writes a line to standard error.
func printError(_ line: String) {
    OutputFile.standardError.write(line.hasSuffix("\n") ? line : line + "\n")
}
