import ArgumentParser
import Control
import Dashboard
#if canImport(Glibc)
import Glibc
#endif

/// `nbdtop attach [PID|PATH]`: the full dashboard on a running copy, drawn from its
/// control socket, with the same keys; `q` detaches and leaves the copy running.
struct AttachCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "attach",
        abstract: "Open the dashboard on a running copy.",
        discussion: """
            PID is a copy's process id (its socket in $XDG_RUNTIME_DIR/nbdtop, or /tmp/nbdtop-UID); \
            PATH is a control socket. Without either, attaches to the only running copy; when several \
            run, offers them to choose from, or lists them and exits 2 when not on a terminal.

            Same keys as the copy's own dashboard, except: q detaches (the copy goes on, exit 0), and \
            S stops the copy (asks y/n). When the copy ends while attached, its summary is printed and \
            nbdtop exits with the copy's exit status.
            """
    )

    @Argument(help: "The copy: a pid or a control socket path.")
    var target: String?

    @Option(help: "Dashboard theme: a name (default, mono, high-contrast, light) or a file path.")
    var theme: String?

    func run() async throws {
        let socket = try await Self.socketPath(for: target)
        if let obstacle = TerminalCheck.obstacle() {
            throw ValidationError("attach needs a terminal: \(obstacle)")
        }
        try await Self.session(socket: socket, theme: theme)
    }

    /// The socket `target` names, or that of the only running copy; nil when several run
    /// and the terminal is there to choose on (not on a terminal, they are listed).
    static func socketPath(for target: String?) async throws -> String? {
        let directory = ControlDirectory.standard
        if let target {
            guard let pid = pid_t(target) else { return target }
            if let result = ResultFile.read(directory.resultPath(pid: pid)) {
                throw ControlDirectoryError("copy \(pid) has ended (exit \(result["exit"]?.int ?? 1))")
            }
            let socket = directory.socketPath(pid: pid)
            guard access(socket, F_OK) == 0 else { throw ControlDirectoryError("no copy \(pid) is running: no \(socket)") }
            return socket
        }
        let running = (try? directory.existsAndIsTrusted()) == true
            ? await directory.transfers().filter { $0.state == .running } : []
        guard let first = running.first else { throw ControlDirectoryError("no copy is running") }
        guard running.count > 1 else { return first.socket ?? "" }
        guard TerminalCheck.obstacle() == nil else {
            for transfer in running { OutputFile.standardOutput.writeLine(ListCommand.line(transfer)) }
            throw ValidationError("\(running.count) copies are running: name one, nbdtop attach PID")
        }
        return nil
    }

    /// On the full screen: the list of running copies to choose from when `socket` is nil
    /// (`q` there exits 0), then the dashboard on the copy at `socket` or the one chosen,
    /// until the user detaches or the copy ends.
    static func session(socket: String?, theme: String?) async throws {
        let themes: ThemeCycle
        do {
            themes = try ThemeLocator().cycle(selected: theme)
        } catch {
            throw ValidationError("--theme: \(error)")
        }
        let signals = AttachSignals()
        defer { signals.cancel() }
        var given: ControlStream?
        if let socket { given = try await ControlStream.connect(to: socket) }
        let screen = try NCursesScreen()
        let stream: ControlStream
        if let given {
            stream = given
        } else {
            let list = CopyListSession(screen: screen, theme: themes.themes[themes.index].theme)
            guard let chosen = await list.run(interrupted: signals.received) else {
                leave(screen, signals)
                return
            }
            do {
                stream = try await ControlStream.connect(to: chosen)
            } catch {
                screen.restore()
                throw error
            }
        }
        let session = DashboardSession(screen: screen, themes: themes, source: stream,
                                       sourceName: stream.start["src"]?.string ?? "?",
                                       destinationName: stream.start["dst"]?.string ?? "?",
                                       requestsPerLane: stream.requestsPerLane, attached: true,
                                       proxy: stream.start["mode"]?.string == "proxy",
                                       tls: DashboardState.tlsBadge(source: stream.start["src_tls"]?.string != nil,
                                                                   destination: stream.start["dst_tls"]?.string != nil),
                                       themeFromCommandLine: theme != nil)
        let end = await session.run(hungUp: signals.received)
        switch end {
        case .detached, .hungUp:
            leave(screen, signals)
            OutputFile.standardOutput.writeLine("detached from copy \(stream.pid); it goes on (nbdtop attach \(stream.pid))")
            if signals.signalNumber != 0 { throw ExitCode(128 + signals.signalNumber) }
        case .copyEnded, .userQuit:
            screen.restore()
            OutputFile.standardOutput.write(SummaryReport.text(stream.snapshot(), flush: stream.flush))
            for message in stream.errorMessages { printError("nbdtop: \(message)") }
            guard let status = stream.exitStatus else {
                throw ControlDirectoryError("copy \(stream.pid) went away without saying how it ended")
            }
            OutputFile.standardOutput.writeLine("copy \(stream.pid) ended: exit \(status)")
            if status != 0 { throw ExitCode(status) }
        }
    }

    /// Gives the terminal back, except after SIGHUP (it is gone): then exits 129 at once.
    private static func leave(_ screen: NCursesScreen, _ signals: AttachSignals) {
        guard signals.signalNumber == SIGHUP else {
            screen.restore()
            return
        }
        screen.abandon()
        Glibc.exit(128 + SIGHUP)
    }
}
