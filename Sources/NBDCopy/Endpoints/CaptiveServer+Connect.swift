import NBD
import NIOCore
import NIOPosix
#if canImport(Glibc)
import Glibc
#endif

// Connecting to a captive server, and explaining a failure by how the server ended and
// its last lines of output.
extension CaptiveServer {
    /// Connects to the server; on failure, the error names the command and says whether
    /// it exited (and how) before accepting the connection.
    public func connect(options: NBDConnection.Options = NBDConnection.Options(),
                        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> NBDConnection {
        do {
            return try await NBDConnection.connect(to: uri, options: options, group: group)
        } catch {
            throw await explain(error)
        }
    }

    /// Turns a failure to reach the server into an error that names the command and, when
    /// the server has exited, how. Waits up to `grace` for the exit to show: the socket
    /// closes a moment before the process can be reaped.
    public func explain(_ error: any Error, grace: Duration = .seconds(1)) async -> EndpointError {
        if let exit = await exitReport(grace: grace) {
            return EndpointError(.connection, "captive server `\(commandLine)` \(exit.status) before accepting a connection"
                                 + exit.lastLines)
        }
        return EndpointError(.connection, "captive server `\(commandLine)`: \(error)")
    }

    /// After a connection to the server was lost: "captive server `CMD` exited with status 1:
    /// LAST LINES" once the server has exited (waiting up to `grace` for the exit to show),
    /// nil while it still runs.
    public func exitAfterLostConnection(grace: Duration = .seconds(1)) async -> String? {
        guard let exit = await exitReport(grace: grace) else { return nil }
        return "captive server `\(commandLine)` \(exit.status)" + exit.lastLines
    }

    /// How the server ended ("exited with status 1") and its last lines of output (": A /
    /// B", or nothing), once it has exited: waits up to `grace` for the exit to show, then
    /// up to `lastLinesWait` for lines still in the pipe. Nil while it still runs.
    private func exitReport(grace: Duration) async -> (status: String, lastLines: String)? {
        await pollUntil(every: .milliseconds(20), timeout: grace) { exitStatusIfExited != nil }
        guard let status = exitStatusIfExited else { return nil }
        await output?.waitForEnd(timeout: Self.lastLinesWait)
        return ("\(status)", logExcerpt())
    }

    /// How long a report of the server's exit waits for its last lines still in the pipe
    /// (its exit can be reaped before they are read); longer only when something it
    /// started keeps the pipe open.
    static let lastLinesWait: Duration = .milliseconds(500)

    /// "captive server `CMD` exited with status 1", once it has exited.
    public var exitDescription: String? {
        exitStatusIfExited.map { "captive server `\(commandLine)` \($0)" }
    }

    /// The server's last lines of output (from `logPath` or the pass-through), for messages.
    private func logExcerpt() -> String {
        var lines: [String] = []
        if let logPath, let text = Self.readTail(of: logPath, bytes: 2048) {
            lines = text.split(separator: "\n", omittingEmptySubsequences: true).suffix(5).map(String.init)
        } else if let output {
            lines = output.lastLines(5)
        }
        guard !lines.isEmpty else { return "" }
        return ": " + lines.joined(separator: " / ")
    }

    private static func readTail(of path: String, bytes: Int) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { _ = Glibc.close(fd) }
        let end = lseek(fd, 0, SEEK_END)
        guard end >= 0 else { return nil }
        let start = max(0, end - off_t(bytes))
        var buffer = [UInt8](repeating: 0, count: Int(end - start))
        let got = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, start) }
        guard got > 0 else { return nil }
        return String(decoding: buffer[..<got], as: UTF8.self)
    }
}
