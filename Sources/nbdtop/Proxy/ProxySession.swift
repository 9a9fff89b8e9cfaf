import Control
import Dashboard
import NBD
import NBDCopy
import NBDProxy
import Telemetry
#if canImport(Glibc)
import Glibc
#endif

/// One run of `nbdtop proxy`: starts the upstream (when captive), listens, writes events
/// and samples, and ends on a stop signal, `--once`'s last client leaving, or `--run`'s
/// command ending. Returns the exit status.
struct ProxySession {
    private enum Input: Sendable {
        case event(ProxyEvent)
        case sample
        case stop(StopSignal)
        case controlStop
        /// `q` on the dashboard: the proxy's normal end.
        case quit
        case runEnded(Int32)
    }

    let settings: ProxySettings

    func run() async -> Int32 {
        let startTime = ContinuousClock.now
        let elapsed: @Sendable () -> Double = { StatsJSON.seconds(.now - startTime) }
        let stats: OutputFile?
        do {
            stats = try settings.statsJSONPath.map { path throws(OutputFileError) in try OutputFile.open(path, as: "--stats-json") }
        } catch {
            printError("nbdtop: \(error)")
            return 2
        }

        var captive: CaptiveServer?
        let upstream: NBDURI
        switch settings.upstream {
        case .nbd(let uri):
            upstream = uri
        case .captive(let command):
            do {
                let server = try CaptiveServer.start(command)
                captive = server
                upstream = server.uri
            } catch {
                printError("nbdtop: \(error)")
                return 1
            }
        default:
            printError("nbdtop: UPSTREAM must be an NBD URI or a captive server [ CMD ... ]")
            return 2
        }

        let upstreamTLS: (relay: RelayTLS, session: NBDTLSSession)?
        do {
            upstreamTLS = try await Self.checkTLS(upstream)
        } catch {
            printError("nbdtop: upstream \(settings.upstream): \(error)")
            await captive?.stop()
            return 1
        }

        let (inputs, continuation) = AsyncStream<Input>.makeStream()
        let signals = ProxySignals { continuation.yield(.stop($0)) }
        defer { signals.cancel() }
        let configuration = ProxyConfiguration(listen: settings.listen, upstream: upstream.transport, upstreamTLS: upstreamTLS?.relay,
                                               stallThreshold: settings.stallThreshold, slowThreshold: settings.slowThreshold)
        let metrics: MetricsServer?
        if let address = settings.metrics {
            do {
                metrics = try await MetricsServer.start(at: address, registry: MetricsRegistry())
            } catch {
                printError("nbdtop: \(error)")
                await captive?.stop()
                return 1
            }
        } else {
            metrics = nil
        }
        let server: ProxyServer
        do {
            server = try await ProxyServer.start(configuration) { continuation.yield(.event($0)) }
        } catch {
            printError("nbdtop: cannot listen on \(Self.describe(settings.listen)): \(error)")
            await metrics?.close()
            await captive?.stop()
            return 1
        }
        if let metrics {
            metrics.registry.update(MetricsFrame(proxy: await server.snapshot()))
            printError("nbdtop: metrics at http://\(metrics.address)/metrics")
        }

        let startLine = ProxyStatsJSON.start(t: elapsed(), uri: server.uri, upstream: settings.upstream.description,
                                             upstreamTLS: upstreamTLS?.session.summary)
        stats?.writeLine(startLine)
        let control = await ProxyControl.start(settings.control, server: server, startLine: startLine, startTime: startTime,
                                                interval: settings.interval) { continuation.yield(.controlStop) }
        if settings.verbose { printError("nbdtop: proxy listening at \(server.uri)") }

        let ended = SessionFlag()
        // The dashboard calls stop only for `q` `y`: the proxy's normal end.
        let transfer = ProxyTransfer(server: server, ended: ended) { continuation.yield(.quit) }
        var dashboard: DashboardSession?
        if settings.tui, let themes = settings.themes {
            do {
                dashboard = DashboardSession(screen: try NCursesScreen(), themes: themes, source: transfer,
                                             sourceName: "clients \(server.uri)", destinationName: settings.upstream.description,
                                             requestsPerLane: 64, proxy: true,
                                             tls: DashboardState.tlsBadge(source: false, destination: upstreamTLS != nil))
            } catch {
                printError("nbdtop: no dashboard (\(error)); running without it")
            }
        }

        var runCommand: RunCommand?
        if let command = settings.run {
            do {
                // With the dashboard up the terminal is its: the command's output would tear it.
                let started = try RunCommand.start(command, uri: server.uri, quiet: dashboard != nil)
                runCommand = started
                Task { continuation.yield(.runEnded(await started.exitStatus())) }
            } catch {
                dashboard?.restore()
                printError("nbdtop: \(error)")
                await server.close()
                await metrics?.close()
                await captive?.stop()
                return 1
            }
        }
        let sampler = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: settings.interval)
                continuation.yield(.sample)
            }
        }

        let verbose = settings.verbose && dashboard == nil
        let loop = Task { () -> (status: Int32, runEnded: Bool, signal: StopSignal?) in
            defer { ended.flag.store(true, ordering: .releasing) }
            for await input in inputs {
                switch input {
                case .event(let event):
                    let line = ProxyStatsJSON.event(event, t: elapsed())
                    stats?.writeLine(line)
                    control?.publish(line)
                    transfer.record(event, at: .now - startTime)
                    if verbose, let human = ProxyStatsJSON.humanLine(event) { printError("nbdtop: \(human)") }
                    if case .clientLeft = event, settings.once, settings.run == nil, server.activeClients == 0 { return (0, false, nil) }
                case .sample:
                    guard stats != nil || metrics != nil else { break }
                    let snapshot = await server.snapshot()
                    stats?.writeLine(ProxyStatsJSON.sample(snapshot))
                    metrics?.registry.update(MetricsFrame(proxy: snapshot))
                case .stop(let signal):
                    return (signal.exitStatus, false, signal)
                case .controlStop:
                    return (StopSignal.interrupt.exitStatus, false, nil)
                case .quit:
                    return (0, false, nil)
                case .runEnded(let status):
                    return (status, true, nil)
                }
            }
            return (0, false, nil)
        }
        if let dashboard {
            let never = SessionFlag()
            _ = await dashboard.run(hungUp: never.flag)
            dashboard.restore()
        }
        let (exitStatus, runEnded, signal) = await loop.value
        if let signal { printError("nbdtop: \(signal.stopped): closing the client connections") }
        sampler.cancel()
        if let runCommand, !runEnded {
            runCommand.terminate()
            _ = await runCommand.exitStatus()
        }
        await server.close()
        await captive?.stop()
        let snapshot = await server.snapshot()
        if stats != nil { stats?.writeLine(ProxyStatsJSON.sample(snapshot)) }
        metrics?.registry.update(MetricsFrame(proxy: snapshot))
        await metrics?.close()
        let done = ProxyStatsJSON.done(snapshot, exitStatus: exitStatus)
        stats?.writeLastLine(done)
        control?.finish(done: done)
        continuation.finish()
        return exitStatus
    }

    /// For an `nbds` upstream: starts TLS with it once, so that a certificate or a server
    /// that is not TLS is reported now, as `nbdtop info` reports it, and not per client.
    private static func checkTLS(_ upstream: NBDURI) async throws -> (relay: RelayTLS, session: NBDTLSSession)? {
        guard upstream.tls else { return nil }
        let session = try await NBDConnection.checkTLS(at: upstream)
        return (try await RelayTLS.make(for: upstream), session)
    }

    static func describe(_ transport: NBDURI.Transport) -> String {
        switch transport {
        case .unix(let path): return path
        case .tcp(let host, let port): return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        }
    }
}
