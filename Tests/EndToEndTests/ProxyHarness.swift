import Foundation
import NBDTestSupport

/// A running `nbdtop proxy --stats-json - SOCKET UPSTREAM...` for tests, listening on a
/// private socket; `lines` parses what it has written so far.
final class ProxyHarness: @unchecked Sendable {
    let command: BackgroundCommand
    let directory: TemporaryDirectory
    let socketPath: String

    /// `nbd+unix:///?socket=PATH`: where clients connect.
    var uri: String { "nbd+unix:///?socket=\(socketPath)" }
    /// The same with an export name.
    func uri(export: String) -> String { "nbd+unix:///\(export)?socket=\(socketPath)" }

    /// `listen`: what to listen on instead of a socket in a private folder.
    init(upstream: [String], options: [String] = [], listen: String? = nil) throws {
        directory = try TemporaryDirectory(prefix: "nbdtop-proxy")
        socketPath = directory.file("proxy.sock")
        command = try BackgroundCommand([try CommandRunner.nbdtopBinary(), "proxy", "--stats-json", "-", "--interval", "100ms"]
                                        + options + [listen ?? socketPath] + upstream)
        // The start line comes once the socket listens (the file exists a moment before).
        let listening = command.waitUntil(timeout: .seconds(30)) { (try? StatsLog(command.stdout, partial: true))?.start != nil }
        guard listening, command.exitStatus == nil else {
            let error = command.stderr
            stop()
            throw TestSupportError("the proxy did not start listening: \(error)")
        }
    }

    deinit { stop() }

    var lines: StatsLog { (try? StatsLog(command.stdout, partial: true)) ?? StatsLog.empty }

    /// Waits until `condition` holds on the lines written so far.
    func waitFor(timeout: Duration = .seconds(30), _ condition: (StatsLog) -> Bool) -> Bool {
        command.waitUntil(timeout: timeout) { condition(lines) }
    }

    /// Stops it with SIGTERM and returns its exit status and complete lines.
    func finish() throws -> (status: Int32?, log: StatsLog) {
        command.signal(SIGTERM)
        let status = command.wait(timeout: .seconds(30))
        return (status, try StatsLog(command.stdout))
    }

    func stop() {
        command.stop()
        directory.remove()
    }

    /// The entry of client `id` in the last sample that has it.
    func lastEntry(of id: Int, in log: StatsLog) -> StatsObject? {
        log.samples.reversed().lazy.compactMap { $0.conns.first { $0.int("id") == id } }.first
    }

    /// Copies the export with `qemu-img convert` through the proxy and straight from
    /// `directURI`; nil when both copies are equal, otherwise what went wrong.
    func qemuImgCopyDiffers(fromDirect directURI: String) throws -> String? {
        let directory = try TemporaryDirectory(prefix: "proxy-qemu-img")
        defer { directory.remove() }
        let through = directory.file("through.img"), direct = directory.file("direct.img")
        let convert = try peer("qemu-img", "convert", "-f", "raw", "-O", "raw", uri, through)
        guard convert.status == 0 else { return "through the proxy: \(convert.stderr)" }
        let straight = try peer("qemu-img", "convert", "-f", "raw", "-O", "raw", directURI, direct)
        guard straight.status == 0 else { return "direct: \(straight.stderr)" }
        return try peer("cmp", through, direct).status == 0 ? nil : "the copies differ"
    }

    /// Bytes written and zeroed through the proxy by the clients whose command name is `comm`.
    func bytesWritten(byClientsNamed comm: String, in log: StatsLog) -> UInt64 {
        log.clients(named: comm).compactMap { id in
            lastEntry(of: id, in: log).flatMap { $0.object("ops") }.map { ops in
                (ops.object("write")?.uint("bytes") ?? 0) + (ops.object("zero")?.uint("bytes") ?? 0)
            }
        }.reduce(0, +)
    }
}

extension StatsLog {
    static var empty: StatsLog { try! StatsLog("") }

    /// The ids of the clients whose command name is `comm`.
    func clients(named comm: String) -> [Int] {
        events("client_connected").filter { $0.object("client")?.string("comm") == comm }.compactMap { $0.int("id") }
    }
}

extension StatsObject {
    func object(_ key: String) -> StatsObject? {
        guard case .object(let members)? = members[key] else { return nil }
        return StatsObject(members, text: members.description)
    }
}
