import ArgumentParser
import Control
import Telemetry

/// `nbdtop ls`: the copies and proxies of this user that are running, then those that
/// ended in the last 24 hours, from the control folder.
struct ListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ls",
        abstract: "List running copies and proxies, and the results of those that ended in the last 24 hours.",
        discussion: """
            One line per copy: pid, source → destination, percent done, rate, lanes, elapsed time, ETA \
            and state (running, paused, done, failed). One line per proxy: pid, "proxy", where clients \
            connect → the upstream, clients (connected now; all it had, once ended), bytes relayed, \
            rate, elapsed time and state (a proxy stopped by Ctrl-C or SIGTERM is done). Running ones \
            are asked over their control sockets in $XDG_RUNTIME_DIR/nbdtop (or /tmp/nbdtop-UID); ended copies are read from the \
            PID.result.json they left there. Sockets of processes that are gone are removed.

            --json prints an array of objects with pid, mode (copy or proxy), state (running, done or \
            failed), src, dst, bytes_done (a proxy's: relayed), bytes_total, rate_bps, lanes (a \
            proxy's: clients), started and ended (seconds since the epoch), \
            elapsed_s, eta_s, paused, exit (once ended) and socket (while running).
            """,
        aliases: ["list"]
    )

    @Flag(help: "Print a JSON array instead of lines.")
    var json = false

    func run() async throws {
        let directory = ControlDirectory.standard
        do {
            guard try directory.existsAndIsTrusted() else {
                if json { OutputFile.standardOutput.writeLine("[]") }
                return
            }
        } catch {
            throw ControlDirectoryError("cannot list copies: \(error)")
        }
        let transfers = await directory.transfers()
        if json {
            OutputFile.standardOutput.writeLine(JSONValue.array(transfers.map(\.json)).pretty)
        } else {
            for transfer in transfers { OutputFile.standardOutput.writeLine(Self.line(transfer)) }
        }
    }

    /// `1234  SRC → DST  42.0%  10.5 MB/s  4 lanes  00:01:23  ETA 00:00:40  running`, or
    /// `1234  proxy  SRC → DST  2 clients  1.5 GB relayed  10.5 MB/s  00:01:23  running`.
    static func line(_ transfer: TransferSummary) -> String {
        if transfer.mode == .proxy { return proxyLine(transfer) }
        let percent = transfer.percent.map { Units.oneDecimal($0) + "%" } ?? "?"
        let eta = transfer.etaSeconds.map { "ETA " + Units.clock(.milliseconds(Int64($0 * 1000))) } ?? "ETA -"
        return [
            "\(transfer.pid)", "\(transfer.source) → \(transfer.destination)", percent,
            transfer.state == .running ? Units.rate(transfer.bytesPerSecond) : "-",
            "\(transfer.lanes) lane\(transfer.lanes == 1 ? "" : "s")",
            elapsed(transfer), transfer.state == .running ? eta : "ended", state(transfer),
        ].joined(separator: "  ")
    }

    private static func proxyLine(_ transfer: TransferSummary) -> String {
        let running = transfer.state == .running, clients = transfer.clients
        return [
            "\(transfer.pid)", "proxy", "\(transfer.source) → \(transfer.destination)",
            "\(clients) client\(clients == 1 ? "" : "s")\(running ? "" : " in all")",
            "\(Units.bytes(transfer.bytesDone)) relayed", running ? Units.rate(transfer.bytesPerSecond) : "-",
            elapsed(transfer), state(transfer),
        ].joined(separator: "  ")
    }

    private static func elapsed(_ transfer: TransferSummary) -> String {
        Units.clock(.milliseconds(Int64(transfer.elapsedSeconds * 1000)))
    }

    /// `running`, `paused`, `done`, or `failed (exit 1)`: any non-zero exit is shown.
    private static func state(_ transfer: TransferSummary) -> String {
        let state = transfer.paused ? "paused" : transfer.state.rawValue
        guard let exit = transfer.exitStatus, exit != 0 else { return state }
        return state + " (exit \(exit))"
    }
}
