import Control
import NBD
import NBDCopy
import NBDProxy
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
        case runEnded(Int32)
    }

    let settings: ProxySettings

    func run() async -> Int32 {
        let startTime = ContinuousClock.now
        func elapsed() -> Double { StatsJSON.seconds(.now - startTime) }
        let stats: OutputFile?
        do {
            stats = try settings.statsJSONPath.map { path throws(OutputFileError) in try OutputFile.open(path, as: "--stats-json") }
        } catch {
            printError("nbdtop: \(error)")
            return 2
        }

        var captive: CaptiveServer?
        let upstream: NBDURI.Transport
        switch settings.upstream {
        case .nbd(let uri):
            upstream = uri.transport
        case .captive(let command):
            do {
                let server = try CaptiveServer.start(command)
                captive = server
                upstream = .unix(path: server.socketPath)
            } catch {
                printError("nbdtop: \(error)")
                return 1
            }
        default:
            printError("nbdtop: UPSTREAM must be an NBD URI or a captive server [ CMD ... ]")
            return 2
        }

        let (inputs, continuation) = AsyncStream<Input>.makeStream()
        let signals = ProxySignals { continuation.yield(.stop($0)) }
        defer { signals.cancel() }
        let configuration = ProxyConfiguration(listen: settings.listen, upstream: upstream,
                                               stallThreshold: settings.stallThreshold, slowThreshold: settings.slowThreshold)
        let server: ProxyServer
        do {
            server = try await ProxyServer.start(configuration) { continuation.yield(.event($0)) }
        } catch {
            printError("nbdtop: cannot listen on \(Self.describe(settings.listen)): \(error)")
            await captive?.stop()
            return 1
        }

        let startLine = ProxyStatsJSON.start(t: elapsed(), uri: server.uri, upstream: settings.upstream.description)
        stats?.writeLine(startLine)
        let control = await ProxyControl.start(settings.control, server: server, startLine: startLine, startTime: startTime,
                                                interval: settings.interval) { continuation.yield(.controlStop) }
        if settings.verbose { printError("nbdtop: proxy listening at \(server.uri)") }

        var runCommand: RunCommand?
        if let command = settings.run {
            do {
                let started = try RunCommand.start(command, uri: server.uri)
                runCommand = started
                Task { continuation.yield(.runEnded(await started.exitStatus())) }
            } catch {
                printError("nbdtop: \(error)")
                await server.close()
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

        var exitStatus: Int32 = 0
        var runEnded = false
        loop: for await input in inputs {
            switch input {
            case .event(let event):
                let line = ProxyStatsJSON.event(event, t: elapsed())
                stats?.writeLine(line)
                control?.publish(line)
                if settings.verbose, let human = ProxyStatsJSON.humanLine(event) { printError("nbdtop: \(human)") }
                if case .clientLeft = event, settings.once, settings.run == nil, server.activeClients == 0 { break loop }
            case .sample:
                if stats != nil || control != nil {
                    let line = ProxyStatsJSON.sample(await server.snapshot())
                    stats?.writeLine(line)
                }
            case .stop(let signal):
                printError("nbdtop: \(signal.stopped): closing the client connections")
                exitStatus = signal.exitStatus
                break loop
            case .controlStop:
                exitStatus = StopSignal.interrupt.exitStatus
                break loop
            case .runEnded(let status):
                exitStatus = status
                runEnded = true
                break loop
            }
        }
        sampler.cancel()
        if let runCommand, !runEnded {
            runCommand.terminate()
            _ = await runCommand.exitStatus()
        }
        await server.close()
        await captive?.stop()
        let snapshot = await server.snapshot()
        if stats != nil { stats?.writeLine(ProxyStatsJSON.sample(snapshot)) }
        let done = ProxyStatsJSON.done(snapshot, exitStatus: exitStatus)
        stats?.writeLastLine(done)
        control?.finish(done: done)
        continuation.finish()
        return exitStatus
    }

    static func describe(_ transport: NBDURI.Transport) -> String {
        switch transport {
        case .unix(let path): return path
        case .tcp(let host, let port): return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        }
    }
}
