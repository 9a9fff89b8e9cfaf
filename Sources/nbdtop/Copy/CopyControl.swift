import Control
import NBDCopy
import Synchronization
import Telemetry
#if canImport(Glibc)
import Glibc
#endif

/// The control socket of one running copy, from start to `finish`.
///
/// When the copy ends, `finish` sends the `done` line to the clients, leaves the result
/// next to the socket, and removes the socket, in that order: `ls` always finds one of them.
final class CopyControl: Sendable {
    let server: ControlServer
    private let target: CopyControlTarget
    private let resultPath: String

    private init(server: ControlServer, target: CopyControlTarget, resultPath: String) {
        self.server = server
        self.target = target
        self.resultPath = resultPath
    }

    /// Opens the control socket for `engine`; nil (after saying why on stderr) when the
    /// setting is off or the folder or socket cannot be used: the copy runs without one.
    static func start(_ setting: ControlSocketSetting, engine: CopyEngine, startLine: String,
                      configuration: CopyConfiguration, startTime: ContinuousClock.Instant) async -> CopyControl? {
        guard let paths = setting.resolvedPaths() else { return nil }
        let socketPath = paths.socket
        let target = CopyControlTarget(engine: engine, startLine: startLine, startTime: startTime,
                                       requestsPerLane: configuration.options.requestsPerLane)
        do {
            let server = try await ControlServer.start(
                at: socketPath, hub: ControlHub(target: target, defaultInterval: configuration.interval))
            return CopyControl(server: server, target: target, resultPath: paths.result)
        } catch {
            printError("nbdtop: no control socket at \(socketPath): \(error)")
            return nil
        }
    }

    /// Whether a client asked the copy to stop.
    var stopWasRequested: Bool { target.stopRequested.load(ordering: .acquiring) }

    /// Sends `line` (an event) to the clients.
    func publish(_ line: String) {
        server.hub.publish(line)
    }

    /// The copy has ended with `done`: tells the clients, writes the result file, removes
    /// the socket. Synchronous, so that an exit at once can call it.
    func finish(done: String, snapshot: CopySnapshot?) {
        publish(done)
        let result = StatsJSON.result(done: done, start: target.startLine, snapshot: snapshot, pid: getpid(),
                                      started: target.started, ended: WallClock.now())
        do {
            try ResultFile.write(result, to: resultPath)
        } catch {
            printError("nbdtop: \(error)")
        }
        server.removeSocketFile()
    }
}

/// What the control socket serves of a copy (its figures, encoded by `StatsJSON` as
/// `--stats-json` writes them), and the engine calls client commands become.
final class CopyControlTarget: ControlTarget {
    private let engine: CopyEngine
    let startLine: String
    private let startTime: ContinuousClock.Instant
    /// Seconds since the epoch when the copy started.
    let started: Double
    private let requestsPerLane: Int
    /// Set when a client sent `stop`, so the session ends as a `q` in the dashboard does.
    let stopRequested = Atomic<Bool>(false)

    init(engine: CopyEngine, startLine: String, startTime: ContinuousClock.Instant, requestsPerLane: Int) {
        self.engine = engine
        self.startLine = startLine
        self.startTime = startTime
        self.requestsPerLane = requestsPerLane
        started = WallClock.now() - StatsJSON.seconds(.now - startTime)
    }

    /// Why lanes cannot be tuned again.
    static let lanesAreFixed = "lanes are not tuned in this copy (-C N, or the endpoints allow one connection)"

    func helloMembers() async -> [(String, JSONValue)] {
        let snapshot = await engine.snapshot()
        return [
            ("t", .double(StatsJSON.rounded(StatsJSON.seconds(.now - startTime), 3))),
            ("pid", .int(Int64(getpid()))),
            ("started", .double(StatsJSON.rounded(started, 3))),
            ("requests_per_lane", .int(Int64(requestsPerLane))),
            ("start", .raw(startLine)),
            ("sample", .raw(StatsJSON.sample(snapshot))),
            ("history", StatsJSON.history(snapshot)),
        ]
    }

    func sampleLine() async -> String {
        StatsJSON.sample(await engine.snapshot())
    }

    func perform(_ command: ControlCommand) async throws(ControlCommandError) -> [(String, JSONValue)] {
        switch command {
        case .addLane:
            do {
                return [("id", .int(Int64(try await engine.addLane())))]
            } catch {
                throw ControlCommandError("\(error)")
            }
        case .dropLane(let id):
            guard let dropped = engine.dropLane(id: id) else {
                throw ControlCommandError(id.map { "cannot drop lane \($0): it is not running, or it is the last" }
                                          ?? "cannot drop: the last lane stays")
            }
            return [("id", .int(Int64(dropped)))]
        case .autoLanes:
            guard engine.resumeAutoLanes() else { throw ControlCommandError(Self.lanesAreFixed) }
            return []
        case .pause:
            engine.setPaused(true)
            return []
        case .resume:
            engine.setPaused(false)
            return []
        case .stop:
            stopRequested.store(true, ordering: .releasing)
            engine.stop()
            return []
        case .interval:
            throw ControlCommandError("interval is the server's")
        }
    }
}
