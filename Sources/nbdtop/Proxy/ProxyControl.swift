import Control
import NBDProxy
import Telemetry
#if canImport(Glibc)
import Glibc
#endif

/// What the control socket serves of a running proxy: its lines, as `--stats-json`
/// writes them; `stop` ends it as Ctrl-C does. Lanes cannot be added or dropped.
final class ProxyControlTarget: ControlTarget {
    private let server: ProxyServer
    let startLine: String
    /// Seconds since the epoch when the proxy started.
    let started: Double
    private let startTime: ContinuousClock.Instant
    private let onStop: @Sendable () -> Void

    init(server: ProxyServer, startLine: String, startTime: ContinuousClock.Instant, onStop: @escaping @Sendable () -> Void) {
        self.server = server
        self.startLine = startLine
        self.startTime = startTime
        self.onStop = onStop
        started = WallClock.now() - StatsJSON.seconds(.now - startTime)
    }

    func helloMembers() async -> [(String, JSONValue)] {
        let snapshot = await server.snapshot()
        return [
            ("t", .double(StatsJSON.rounded(StatsJSON.seconds(.now - startTime), 3))),
            ("pid", .int(Int64(getpid()))),
            ("started", .double(StatsJSON.rounded(started, 3))),
            ("mode", .string("proxy")),
            ("start", .raw(startLine)),
            ("sample", .raw(ProxyStatsJSON.sample(snapshot))),
            ("history", .array(snapshot.clients.map { client in
                .object([("id", .int(Int64(client.id))), ("side", .string("client")),
                         ("rate_bps", .array(client.connection.rateHistory.map { .double(StatsJSON.rounded($0, 0)) }))])
            })),
        ]
    }

    func sampleLine() async -> String {
        ProxyStatsJSON.sample(await server.snapshot())
    }

    func perform(_ command: ControlCommand) async throws(ControlCommandError) -> [(String, JSONValue)] {
        switch command {
        case .stop:
            onStop()
            return []
        default:
            throw ControlCommandError("a proxy takes only stop: its clients choose their connections")
        }
    }
}

/// The control socket of one running proxy, as a copy has one: `ls` lists it and
/// `attach` follows its lines.
final class ProxyControl: Sendable {
    private let server: ControlServer
    private let target: ProxyControlTarget
    private let resultPath: String

    private init(server: ControlServer, target: ProxyControlTarget, resultPath: String) {
        self.server = server
        self.target = target
        self.resultPath = resultPath
    }

    /// Opens the socket; nil (after saying why) when off or it cannot be used.
    static func start(_ setting: ControlSocketSetting, server proxy: ProxyServer, startLine: String,
                      startTime: ContinuousClock.Instant, interval: Duration,
                      onStop: @escaping @Sendable () -> Void) async -> ProxyControl? {
        guard let paths = setting.resolvedPaths() else { return nil }
        let socketPath = paths.socket
        let target = ProxyControlTarget(server: proxy, startLine: startLine, startTime: startTime, onStop: onStop)
        do {
            let server = try await ControlServer.start(at: socketPath, hub: ControlHub(target: target, defaultInterval: interval))
            return ProxyControl(server: server, target: target, resultPath: paths.result)
        } catch {
            printError("nbdtop: no control socket at \(socketPath): \(error)")
            return nil
        }
    }

    func publish(_ line: String) {
        server.hub.publish(line)
    }

    /// Sends `done`, leaves the result next to the socket, removes the socket.
    func finish(done: String) {
        publish(done)
        var members: [(String, JSONValue)] = [("v", .int(StatsJSON.schemaVersion)), ("event", .string("result")), ("pid", .int(Int64(getpid()))),
                                              ("mode", .string("proxy"))]
        if case .object(let start)? = try? JSONValue.parse(target.startLine) {
            members += start.filter { ["src", "dst"].contains($0.0) }
        }
        if case .object(let doneMembers)? = try? JSONValue.parse(done) {
            members += doneMembers.filter { !["v", "event", "t", "mode"].contains($0.0) }
        }
        members += [("started", .double(StatsJSON.rounded(target.started, 3))),
                    ("ended", .double(StatsJSON.rounded(WallClock.now(), 3)))]
        do {
            try ResultFile.write(.object(members), to: resultPath)
        } catch {
            printError("nbdtop: \(error)")
        }
        server.removeSocketFile()
    }
}
