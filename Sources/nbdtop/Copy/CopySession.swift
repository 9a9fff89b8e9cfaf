import ArgumentParser
import NBD
import NBDCopy
import NIOCore
import NIOPosix

/// One run of `nbdtop copy` without the dashboard: opens the endpoints, runs the engine,
/// and reports through `--progress`, `--stats-json`, `-v` and the exit status.
final class CopySession: Sendable {
    private let options: CopyOptions
    private let source: EndpointSpec
    private let destination: EndpointSpec
    private let statsOutput: OutputFile?
    private let showProgress: Bool
    private let interval: Duration
    private let verbose: Bool
    private let startTime = ContinuousClock.now

    init(command: CopyCommand) throws {
        options = try command.copyOptions()
        (source, destination) = try command.specs()
        interval = try command.sampleInterval()
        showProgress = command.progress
        verbose = command.verbose
        if let path = command.statsJSON {
            do {
                statsOutput = try OutputFile.open(path)
            } catch {
                throw ValidationError("--stats-json: \(error)")
            }
        } else {
            statsOutput = nil
        }
    }

    private var seconds: Double { StatsJSON.seconds(ContinuousClock.now - startTime) }

    private func log(_ line: String) {
        if verbose { printError("nbdtop: \(line)") }
    }

    /// Runs the copy; returns the exit status.
    func run() async -> Int32 {
        defer { statsOutput?.close() }
        let eventLoop = MultiThreadedEventLoopGroup.singleton.next()
        let sourceEndpoint: any CopyEndpoint
        do {
            sourceEndpoint = try await source.openSource(on: eventLoop)
        } catch {
            return fail("source \(source): \(error)", status: Self.openFailureStatus(error))
        }
        let destinationEndpoint: any CopyEndpoint
        do {
            destinationEndpoint = try await destination.openDestination(sourceSize: sourceEndpoint.size, on: eventLoop)
        } catch {
            await sourceEndpoint.close()
            return fail("destination \(destination): \(error)", status: Self.openFailureStatus(error))
        }
        let engine: CopyEngine
        do {
            engine = try CopyEngine(source: sourceEndpoint, destination: destinationEndpoint, options: options,
                                    firstEventLoop: eventLoop)
        } catch {
            await sourceEndpoint.close()
            await destinationEndpoint.close()
            return fail("\(error)", status: 1)
        }
        let lanes = max(1, min(options.connections, engine.maximumLanes))
        statsOutput?.writeLine(StatsJSON.start(t: seconds, source: source.description, destination: destination.description,
                                               size: sourceEndpoint.size, lanes: lanes, maximumLanes: engine.maximumLanes,
                                               laneLimitReason: engine.laneLimitReason, requestSize: options.requestSize))
        if options.connections > engine.maximumLanes {
            log("using \(engine.maximumLanes) lane\(engine.maximumLanes == 1 ? "" : "s") instead of \(options.connections): \(engine.laneLimitReason)")
        }
        let watcher = SignalWatcher(engine: engine) { line in printError("nbdtop: \(line)") }
        defer { watcher.cancel() }

        let events = Task {
            for await event in engine.events {
                statsOutput?.writeLine(StatsJSON.event(event, t: seconds))
                log(Self.describe(event))
            }
        }
        let sampler = Task {
            let progress = showProgress ? ProgressLine() : nil
            while !Task.isCancelled {
                try await Task.sleep(for: interval)
                let snapshot = await engine.snapshot()
                statsOutput?.writeLine(StatsJSON.sample(snapshot))
                progress?.show(snapshot)
            }
        }

        var status: Int32 = 0
        var failure: String?
        do {
            _ = try await engine.run()
        } catch CopyError.interrupted {
            status = 130
            failure = "copy interrupted"
        } catch {
            status = 1
            failure = "copy failed: \(error)"
        }
        sampler.cancel()
        _ = await sampler.result
        await events.value
        let final = await engine.snapshot()
        statsOutput?.writeLine(StatsJSON.sample(final))
        if showProgress { ProgressLine().finish(final) }
        if let failure {
            statsOutput?.writeLine(StatsJSON.error(failure, t: seconds))
            printError("nbdtop: \(failure)")
        } else if verbose {
            log("copied \(final.bytesDone) bytes in \(Units.clock(final.elapsed)) (\(Units.rate(final.averageBytesPerSecond)) average), \(final.bytesZeroed + final.bytesSkipped) zero")
        }
        statsOutput?.writeLine(StatsJSON.done(final, t: seconds, exitStatus: status))
        return status
    }

    private func fail(_ message: String, status: Int32) -> Int32 {
        statsOutput?.writeLine(StatsJSON.error(message, t: seconds))
        statsOutput?.writeLine(StatsJSON.done(nil, t: seconds, exitStatus: status))
        printError("nbdtop: \(message)")
        return status
    }

    /// Bad URIs, unreadable files and misused endpoints are usage errors; a server that
    /// cannot be reached or refuses is a failure.
    private static func openFailureStatus(_ error: any Error) -> Int32 {
        if let nbdError = error as? NBDError { return nbdError.isUsageError ? 2 : 1 }
        if error is EndpointError { return 1 }
        return 2
    }

    static func describe(_ event: CopyEvent) -> String {
        switch event {
        case .laneAdded(let id): return "lane \(id) added"
        case .laneDropped(let id): return "lane \(id) dropped"
        case .laneFailed(let id, let reason): return "lane \(id) failed: \(reason)"
        case .laneRefused(let reason): return "cannot add a lane: \(reason)"
        case .stall(let id, let side, let oldest, let held):
            return "lane \(id) \(side.rawValue) stalled: oldest request \(Units.oneDecimal(StatsJSON.seconds(oldest) * 1000)) ms, \(held) waiting behind it"
        case .retry(let offset, let length, let attempt, let error):
            return "retrying \(length) bytes at offset \(offset) (attempt \(attempt + 1)): \(error)"
        case .paused(let paused): return paused ? "paused" : "resumed"
        }
    }
}
