import ArgumentParser
import Control
import Dashboard
import NBD
import NBDCopy
import NIOCore
import NIOPosix
import Synchronization
import Telemetry
#if canImport(Glibc)
import Glibc
#endif

/// One run of `nbdtop copy` (or `nbdtop demo`): opens the endpoints, runs the engine, and
/// reports through the dashboard or headless (`--progress`, `-v`), `--stats-json` and the
/// control socket in both, and the exit status.
///
/// SIGHUP while the dashboard is up means its terminal went away: the dashboard is dropped
/// without touching the terminal and the copy goes on headless, attachable, to its end.
/// Without a dashboard, SIGHUP stops the copy like SIGTERM (exit 129).
final class CopySession: Sendable {
    private let configuration: CopyConfiguration
    private let statsOutput: OutputFile?
    /// Tells the `--background` parent whether the copy started.
    private let readiness: BackgroundReadiness?
    private let themes: ThemeCycle?
    private let wantsDashboard: Bool
    private let startTime = ContinuousClock.now
    /// What an exit at once needs from the running copy.
    private let progress = Mutex(Progress())

    private struct Progress {
        /// The last snapshot taken.
        var latest: CopySnapshot?
        /// The destination, once open.
        var incomplete: IncompleteDestination?
        /// The control socket, once open.
        var control: CopyControl?
    }

    init(_ configuration: CopyConfiguration) throws {
        self.configuration = configuration
        readiness = configuration.readyDescriptor.map(BackgroundReadiness.init)
        wantsDashboard = try Self.wantsDashboard(configuration)
        if wantsDashboard || configuration.theme != nil {
            do {
                themes = try ThemeLocator().cycle(selected: configuration.theme)
            } catch {
                throw ValidationError("--theme: \(error)")
            }
        } else {
            themes = nil
        }
        if let path = configuration.statsJSONPath {
            do {
                statsOutput = try OutputFile.open(path, as: "--stats-json")
            } catch {
                throw ValidationError("--stats-json: \(error)")
            }
        } else {
            statsOutput = nil
        }
    }

    /// The dashboard needs a terminal for keys and screen, which a `-` endpoint or JSON on
    /// stdout would take; by default it is used whenever it can be.
    private static func wantsDashboard(_ configuration: CopyConfiguration) throws -> Bool {
        var obstacle = TerminalCheck.obstacle()
        if configuration.source == .pipe || configuration.destination == .pipe {
            obstacle = obstacle ?? "a '-' endpoint uses the terminal's stdin or stdout"
        } else if configuration.statsJSONPath == "-" {
            obstacle = obstacle ?? "--stats-json - writes to stdout"
        }
        if configuration.tui == true, let obstacle {
            throw ValidationError("--tui cannot be used: \(obstacle)")
        }
        return configuration.tui ?? (obstacle == nil)
    }

    private var seconds: Double { StatsJSON.seconds(ContinuousClock.now - startTime) }

    private func log(_ line: String) {
        if configuration.verbose { printError("nbdtop: \(line)") }
    }

    /// Runs the copy; returns the exit status.
    func run() async -> Int32 {
        defer { statsOutput?.close() }
        // From the start, so that a stop asked for while the endpoints open is not lost.
        let watcher = SignalWatcher(log: { line in printError("nbdtop: \(line)") },
                                    exitAtOnce: { [self] stopSignal in exitAtOnce(stopSignal) })
        defer { watcher.cancel() }
        let options = configuration.options
        let source = configuration.source, destination = configuration.destination
        let eventLoop = MultiThreadedEventLoopGroup.singleton.next()
        let sourceEndpoint: any CopyEndpoint
        do {
            sourceEndpoint = try await source.openSource(on: eventLoop)
        } catch {
            return fail(Self.describe(error, opening: "source", source), status: Self.openFailureStatus(error, source))
        }
        let destinationEndpoint: any CopyEndpoint
        do {
            destinationEndpoint = try await destination.openDestination(sourceSize: sourceEndpoint.size, on: eventLoop)
        } catch {
            await sourceEndpoint.close()
            return fail(Self.describe(error, opening: "destination", destination), status: Self.openFailureStatus(error, destination))
        }
        let incomplete = IncompleteDestination(destinationEndpoint)
        progress.withLock { $0.incomplete = incomplete }
        // Before the engine: one that is made must also be run.
        let metrics: MetricsServer?
        if let address = configuration.metrics {
            do {
                metrics = try await MetricsServer.start(at: address, registry: MetricsRegistry())
            } catch {
                await sourceEndpoint.close()
                await destinationEndpoint.close()
                return fail("\(error)", status: 1, destination: incomplete.settle(nil))
            }
        } else {
            metrics = nil
        }
        let engine: CopyEngine
        do {
            engine = try CopyEngine(source: sourceEndpoint, destination: destinationEndpoint, options: options,
                                    firstEventLoop: eventLoop)
        } catch {
            await metrics?.close()
            await sourceEndpoint.close()
            await destinationEndpoint.close()
            return fail("\(error)", status: 1, destination: incomplete.settle(nil))
        }
        if let metrics {
            metrics.registry.update(MetricsFrame(copy: await engine.snapshot()))
            printError("nbdtop: metrics at http://\(metrics.address)/metrics")
        }
        let startLine = StatsJSON.start(t: seconds, source: source.description, destination: destination.description,
                                        destinationIsNBD: destinationEndpoint is NBDEndpoint, size: sourceEndpoint.size,
                                        lanes: engine.initialLanes, maximumLanes: engine.maximumLanes,
                                        laneLimitReason: engine.laneLimitReason, requestSize: engine.initialRequestSize,
                                        sourceTLS: sourceEndpoint.tls?.summary, destinationTLS: destinationEndpoint.tls?.summary)
        statsOutput?.writeLine(startLine)
        let control = await CopyControl.start(configuration.control, engine: engine, startLine: startLine,
                                              configuration: configuration, startTime: startTime)
        progress.withLock { $0.control = control }
        readiness?.started(socket: control?.server.path)
        if !options.autoLanes && options.connections > engine.maximumLanes {
            log("using \(engine.maximumLanes) lane\(engine.maximumLanes == 1 ? "" : "s") instead of \(options.connections): \(engine.laneLimitReason)")
        }
        watcher.attach(engine)

        var dashboard: DashboardSession?
        var dashboardEvents: EventBuffer?
        let ended = SessionFlag()
        if wantsDashboard, let themes {
            do {
                let events = EventBuffer()
                let local = LocalTransfer(engine: engine, events: events, ended: ended, startTime: startTime)
                dashboard = DashboardSession(screen: try NCursesScreen(), themes: themes, source: local,
                                             sourceName: source.description, destinationName: destination.description,
                                             requestsPerLane: options.requestsPerLane, hint: configuration.hint,
                                             tls: DashboardState.tlsBadge(source: sourceEndpoint.tls != nil,
                                                                         destination: destinationEndpoint.tls != nil),
                                             themeFromCommandLine: configuration.theme != nil)
                dashboardEvents = events
            } catch {
                printError("nbdtop: no dashboard (\(error)); running without it")
            }
        }
        let eventBuffer = dashboardEvents
        let events = Task {
            for await event in engine.events {
                emit(StatsJSON.event(event, t: seconds))
                if eventBuffer?.append(event, at: ContinuousClock.now - startTime) != true {
                    log(Self.describe(event))
                }
            }
        }
        let progressDisplay = configuration.showProgress && dashboard == nil ? configuration.progressDisplay : nil
        progressDisplay?.start()
        let sampler = Task { [interval = configuration.interval] in
            while !Task.isCancelled {
                try await Task.sleep(for: interval)
                let snapshot = await engine.snapshot()
                self.progress.withLock { $0.latest = snapshot }
                statsOutput?.writeLine(StatsJSON.sample(snapshot))
                metrics?.registry.update(MetricsFrame(copy: snapshot))
                progressDisplay?.show(snapshot)
            }
        }

        let result: Result<CopySummary, any Error>
        var userQuit = false
        var hungUp = false
        if let dashboard {
            let copy = Task {
                defer { ended.flag.store(true, ordering: .releasing) }
                return try await engine.run()
            }
            let hangUp = SessionFlag()
            watcher.divertHangUp { hangUp.flag.store(true, ordering: .releasing) }
            switch await dashboard.run(hungUp: hangUp.flag) {
            case .copyEnded, .detached:
                dashboard.restore()
            case .userQuit:
                userQuit = true
                dashboard.restore()
            case .hungUp:
                hungUp = true
                dashboard.abandon()
                eventBuffer?.close()
                log("SIGHUP: the terminal is gone; the copy goes on without the dashboard")
            }
            watcher.divertHangUp(nil)
            result = await copy.result
        } else {
            do {
                result = .success(try await engine.run())
            } catch {
                result = .failure(error)
            }
        }
        sampler.cancel()
        _ = await sampler.result
        await events.value
        let final = await engine.snapshot()
        let flush = await engine.outcome?.flush ?? .notReached
        progress.withLock { $0.latest = final }
        emit(StatsJSON.sample(final))
        metrics?.registry.update(MetricsFrame(copy: final))
        await metrics?.close()
        progressDisplay?.finish(final, succeeded: (try? result.get()) != nil)
        if dashboard != nil && !hungUp {
            OutputFile.standardOutput.write(SummaryReport.text(final, flush: flush))
        }

        switch result {
        case .success:
            if configuration.verbose && dashboard == nil {
                log("copied \(final.bytesDone) bytes in \(Units.clock(final.elapsed)) (\(Units.rate(final.averageBytesPerSecond)) average), \(final.bytesZeroed + final.bytesSkipped) zero; \(flush.summary)")
            }
            end(StatsJSON.done(final, t: seconds, exitStatus: 0, flush: flush), snapshot: final)
            await control?.server.close()
            return 0
        case .failure(CopyError.interrupted):
            // q y in the dashboard or a control client's stop ends as Ctrl-C does; otherwise
            // the first stop signal decides.
            let asked = userQuit || control?.stopWasRequested == true
            let stopSignal: StopSignal = asked ? .interrupt : watcher.stopSignal ?? .interrupt
            let how = userQuit ? "stopped before the end" : asked ? "stopped by a control client" : stopSignal.stopped
            let status = fail("copy \(how) after \(IncompleteDestination.progress(final))", status: stopSignal.exitStatus,
                              snapshot: final, flush: flush, destination: incomplete.settle(final))
            await control?.server.close()
            return status
        case .failure(let error):
            let status = fail("copy failed after \(IncompleteDestination.progress(final)): \(error)", status: 1,
                              snapshot: final, flush: flush, destination: incomplete.settle(final))
            await control?.server.close()
            return status
        }
    }

    /// Reports `message` (and what became of the destination) on stderr, in the JSON
    /// lines and to control clients, ends those with `done`, and returns `status`.
    private func fail(_ message: String, status: Int32, snapshot: CopySnapshot? = nil, flush: CopyOutcome.Flush = .notReached,
                      destination: String? = nil) -> Int32 {
        readiness?.failed(message)
        emit(StatsJSON.error(message, t: seconds))
        printError("nbdtop: \(message)")
        if let destination {
            emit(StatsJSON.error(destination, t: seconds))
            printError("nbdtop: \(destination)")
        }
        end(StatsJSON.done(snapshot, t: seconds, exitStatus: status, flush: flush), snapshot: snapshot)
        return status
    }

    /// Writes `line` to `--stats-json` and sends it to the control clients.
    private func emit(_ line: String) {
        statsOutput?.writeLine(line)
        progress.withLock { $0.control }?.publish(line)
    }

    /// Ends the JSON lines with `done`, and leaves the result where the control socket was.
    private func end(_ done: String, snapshot: CopySnapshot?) {
        statsOutput?.writeLastLine(done)
        progress.withLock { $0.control }?.finish(done: done, snapshot: snapshot)
    }

    /// A second stop signal, while the copy may still run: give the terminal back, settle
    /// the destination with the last snapshot taken (its prefix is complete, if not the
    /// latest), end the JSON lines with `done`, and exit.
    private func exitAtOnce(_ stopSignal: StopSignal) -> Never {
        let (latest, incomplete) = progress.withLock { ($0.latest, $0.incomplete) }
        let destination = incomplete?.settle(latest)
        // Last before the messages: the dashboard may draw until the process ends.
        NCursesScreen.restoreBeforeExit()
        _ = fail("\(stopSignal.name) again: exiting at once" + (latest.map { " after \(IncompleteDestination.progress($0))" } ?? ""),
                 status: stopSignal.exitStatus, snapshot: latest, destination: destination)
        exit(stopSignal.exitStatus)
    }

    /// Bad URIs, unreadable files and misused endpoints are usage errors; a server that
    /// cannot be reached, refuses, or a captive server that fails is a failure.
    private static func openFailureStatus(_ error: any Error, _ spec: EndpointSpec) -> Int32 {
        switch spec {
        case .nbd: return (error as? NBDError)?.isUsageError == true ? 2 : 1
        case .captive: return 1
        case .file, .null, .pipe: return 2
        }
    }

    /// "source X: why", without saying X twice when the error already names it.
    private static func describe(_ error: any Error, opening side: String, _ spec: EndpointSpec) -> String {
        let text = "\(error)"
        return text.contains(spec.description) ? "\(side): \(text)" : "\(side) \(spec): \(text)"
    }

    static func describe(_ event: CopyEvent) -> String {
        switch event {
        case .laneAdded(let id): return "lane \(id) added"
        case .laneDropped(let id): return "lane \(id) dropped"
        case .laneFailed(let id, let reason): return "lane \(id) failed: \(reason)"
        case .laneRefused(let reason): return "cannot add a lane: \(reason)"
        case .stall(let id, let side, let oldest, let held):
            return "lane \(id) \(side.rawValue) head-of-line stall: oldest request \(Units.oneDecimal(StatsJSON.seconds(oldest) * 1000)) ms, \(held) held behind it"
        case .slowRequest(let id, let side, let operation, let offset, let length, let latency):
            return "lane \(id) \(side.rawValue) slow request (not a stall): \(operation.rawValue) of \(length) bytes at offset \(offset) took \(Units.oneDecimal(StatsJSON.seconds(latency) * 1000)) ms"
        case .retry(let id, let side, let offset, let length, let attempt, let error):
            return "lane \(id) \(side.rawValue): retrying \(length) bytes at offset \(offset) (attempt \(attempt + 1)): \(error)"
        case .laneReconnecting(let id, let side, let attempt, let error):
            return "lane \(id) \(side.rawValue): connection lost, reconnecting (try \(attempt)): \(error)"
        case .laneReconnected(let id, let side):
            return "lane \(id) \(side.rawValue): reconnected"
        case .paused(let paused): return paused ? "paused" : "resumed"
        case .auto(let decision): return "auto: \(decision.reason)"
        }
    }
}

/// Set once (the engine's run has returned, the terminal hung up), for the dashboard loop
/// to notice.
final class SessionFlag: Sendable {
    let flag = Atomic<Bool>(false)
}
