import ArgumentParser
import Dashboard
import NBD
import NBDCopy

/// `nbdtop proxy`: relay any NBD client's traffic to a server, and measure it.
struct ProxyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "proxy",
        abstract: "Relay NBD clients to a server unchanged, and measure their traffic.",
        discussion: """
            LISTEN is a Unix socket path, nbd+unix:///?socket=PATH, or nbd://HOST:PORT (bound exactly as \
            given). UPSTREAM is an NBD URI, or a captive server '[ CMD ARGS... ]' that nbdtop starts once \
            with socket activation (put '--' before it). Every client connection gets its own upstream \
            connection; bytes pass through unchanged both ways, the handshake included, except that the \
            proxy refuses NBD_OPT_STARTTLS and NBD_OPT_EXTENDED_HEADERS itself, so that clients fall back.

            An nbds:// or nbds+unix:// UPSTREAM (or a captive server started with TLS on) is reached over \
            TLS: the proxy starts TLS on each upstream connection itself, with the URI's tls-* settings, \
            while clients speak plaintext NBD to LISTEN (so keep LISTEN on loopback or a Unix socket). TLS \
            is checked once at start (exit 1 if it fails); a client whose upstream later refuses TLS gets \
            the reason as an option error and is closed, never relayed in the clear.

            It runs until Ctrl-C or SIGTERM (exit 130, 143), until the last client leaves with --once \
            (exit 0), or, with --run, until that command ends (exiting with its status). The command runs \
            through /bin/sh with $uri and $NBD_URI pointing at the proxy.

            --stats-json writes the copy's JSON lines with "mode":"proxy": one connection entry per \
            client (side "client", with who it is: pid and command name on Unix sockets, address and \
            port on TCP), client_connected and client_left events, and the export's read and written \
            coverage. Like a copy it has a control socket, so 'nbdtop ls' lists it. On a terminal it shows \
            the dashboard, a row per client, with the coverage as the header's bar; q then y ends it (exit 0).
            """
    )

    @Flag(help: "End when the last client leaves.")
    var once = false

    @Option(name: .customLong("run"),
            help: ArgumentHelp("Start CMD with $uri set to the proxy; exit with its status when it ends.", valueName: "cmd"))
    var runCommand: String?

    @OptionGroup var recording: RecordingOptions

    @OptionGroup var thresholds: ThresholdOptions

    @OptionGroup var display: DisplayOptions

    @Flag(name: [.customShort("v"), .customLong("verbose")], help: "Log clients coming and going, and stalls, to stderr.")
    var verbose = false

    @OptionGroup var controlSocket: ControlOptions

    @Argument(parsing: .captureForPassthrough, help: "LISTEN UPSTREAM")
    var addresses: [String] = []

    func validate() throws {
        if PassthroughHelp.isRequested(in: addresses) { throw CleanExit.helpRequest(self) }
        _ = try settings()
    }

    func settings() throws -> ProxySettings {
        var words = addresses.first == "--" ? Array(addresses.dropFirst()) : addresses
        guard let listenText = words.first else { throw ValidationError("expected LISTEN and UPSTREAM") }
        words.removeFirst()
        if words.first == "--" { words.removeFirst() }
        let listen: NBDURI.Transport
        do {
            listen = try ProxySettings.listenAddress(listenText)
        } catch {
            throw ValidationError("LISTEN: \(error)")
        }
        let specs: [EndpointSpec]
        do {
            specs = try EndpointSpec.parseAll(words)
        } catch {
            throw ValidationError("UPSTREAM: \(error)")
        }
        guard specs.count == 1 else {
            throw ValidationError("expected LISTEN and one UPSTREAM, got \(specs.count) upstreams")
        }
        switch specs[0] {
        case .nbd, .captive: break
        default:
            throw ValidationError("UPSTREAM '\(specs[0])' must be an NBD URI or a captive server [ CMD ... ]")
        }
        if let runCommand, runCommand.allSatisfy({ $0 == " " || $0 == "\t" }) { throw ValidationError("--run needs a command") }
        return ProxySettings(listen: listen, upstream: specs[0], once: once, run: runCommand, statsJSONPath: recording.statsJSON,
                             interval: recording.interval.duration, stallThreshold: thresholds.stallThreshold?.duration,
                             slowThreshold: thresholds.slowThreshold?.duration, verbose: verbose,
                             control: controlSocket.setting,
                             tui: try wantsDashboard(), themes: nil, metrics: recording.metrics)
    }

    /// The dashboard needs the terminal, which JSON on stdout would take; by default it is
    /// used whenever it can be.
    private func wantsDashboard() throws -> Bool {
        var obstacle = TerminalCheck.obstacle()
        if recording.writesToStdout { obstacle = obstacle ?? "--stats-json - writes to stdout" }
        if display.tui == true, let obstacle { throw ValidationError("--tui cannot be used: \(obstacle)") }
        return display.tui ?? (obstacle == nil)
    }

    func run() async throws {
        var settings = try settings()
        if settings.tui {
            do {
                settings.themes = try ThemeLocator().cycle(selected: display.theme)
            } catch {
                throw ValidationError("--theme: \(error)")
            }
        }
        let status = await ProxySession(settings: settings).run()
        if status != 0 { throw ExitCode(status) }
    }
}
