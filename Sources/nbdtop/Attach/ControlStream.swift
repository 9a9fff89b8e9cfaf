import Control
import Dashboard
import NBDCopy
import Telemetry
#if canImport(Glibc)
import Glibc
#endif

/// A client of a copy's control socket, for `nbdtop attach`: the dashboard's source for a
/// copy in another process. It reads the hello, then the event and sample lines as they
/// come, and sends the dashboard's keys as commands.
///
/// The socket is non-blocking and read only when the dashboard loop asks (`drainNotes`),
/// as keys are polled: nothing here ever waits.
final class ControlStream: TransferSource {
    /// The copy's pid, start line (`src`, `dst`, `max_lanes`, …) and `-R`, from the hello.
    let pid: Int32
    let start: JSONValue
    let requestsPerLane: Int
    /// The exit status the copy's `done` line gave; nil until it came.
    private(set) var exitStatus: Int32?
    /// What became of the final flush, from the `done` event.
    private(set) var flush: CopyOutcome.Flush?
    /// The messages of the `error` lines received (those among the hello's events too).
    private(set) var errorMessages: [String] = []
    /// The copy closed the connection (after `done`, or because it went away).
    private(set) var closed = false
    private let descriptor: Int32
    private var received: [UInt8] = []
    private var latest = CopySnapshot()
    /// A proxy's clients by id, from the last sample.
    private(set) var connectionLabels: [Int: String] = [:]
    /// Each connection's rate per second, oldest first, at most 60: the sparklines.
    private var history: [String: [Double]] = [:]
    private var historySecond = 0
    private var pending: [TransferNote] = []

    private init(descriptor: Int32, hello: JSONValue) {
        self.descriptor = descriptor
        pid = Int32(hello["pid"]?.int ?? 0)
        start = hello["start"] ?? .null
        requestsPerLane = Int(hello["requests_per_lane"]?.int ?? 64)
        for entry in hello["history"]?.array ?? [] {
            guard let id = entry["id"]?.int, let side = entry["side"]?.string else { continue }
            history[Self.key(Int(id), side)] = (entry["rate_bps"]?.array ?? []).compactMap(\.double)
        }
        for line in hello["events"]?.array ?? [] { handle(line) }
        if let sample = hello["sample"] {
            historySecond = Int(sample["t"]?.double ?? 0)
            handle(sample)
        }
    }

    deinit { close(descriptor) }

    /// Connects to the socket at `path` and reads the hello; throws when nothing answers
    /// or no version 1 hello arrives within `timeout`.
    static func connect(to path: String, timeout: Duration = .seconds(5)) async throws -> ControlStream {
        let descriptor = try UnixStreamSocket.connect(to: path)
        var buffer: [UInt8] = []
        let deadline = ContinuousClock.now + timeout
        while true {
            switch UnixStreamSocket.read(descriptor, into: &buffer) {
            case .closed:
                close(descriptor)
                throw ControlDirectoryError("\(path): the copy closed the connection before its hello")
            case .failed(let error):
                close(descriptor)
                throw ControlDirectoryError("\(path): \(error)")
            case .open:
                break
            }
            if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let hello = try? JSONValue.parse(buffer[..<newline])
                guard let hello, hello["event"]?.string == "hello", hello["v"]?.int == 1 else {
                    close(descriptor)
                    throw ControlDirectoryError("\(path): the first line is not a version 1 hello")
                }
                let stream = ControlStream(descriptor: descriptor, hello: hello)
                stream.received = Array(buffer[(newline + 1)...])
                return stream
            }
            if ContinuousClock.now > deadline || buffer.count > ControlClient.maximumLineBytes {
                close(descriptor)
                throw ControlDirectoryError("\(path): no hello within \(timeout)")
            }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    var hasEnded: Bool { closed || exitStatus != nil }

    func snapshot() -> CopySnapshot { latest }

    func drainNotes() -> [TransferNote] {
        pump()
        defer { pending = [] }
        return pending
    }

    func addLane() { send(.addLane) }
    func dropLane(id: Int?) { send(.dropLane(id: id)) }
    func resumeAutoLanes() { send(.autoLanes) }
    func setPaused(_ paused: Bool) { send(paused ? .pause : .resume) }
    func stop() { send(.stop) }

    /// Asks for samples as often as the dashboard draws.
    func refreshIntervalChanged(to interval: Duration) {
        let milliseconds = Int(interval.components.seconds * 1000 + interval.components.attoseconds / 1_000_000_000_000_000)
        send(.interval(milliseconds: min(max(milliseconds, ControlCommand.intervalRange.lowerBound),
                                         ControlCommand.intervalRange.upperBound)))
    }

    /// Reads what has arrived and handles every whole line.
    private func pump() {
        guard !closed else { return }
        switch UnixStreamSocket.read(descriptor, into: &received) {
        case .open: break
        case .closed: closed = true
        case .failed(let error):
            closed = true
            note("control connection: \(error)", severity: .error)
        }
        var lineStart = received.startIndex
        while let newline = received[lineStart...].firstIndex(of: UInt8(ascii: "\n")) {
            if let line = try? JSONValue.parse(received[lineStart..<newline]) { handle(line) }
            lineStart = newline + 1
        }
        received.removeSubrange(..<lineStart)
        if received.count > ControlClient.maximumLineBytes {
            closed = true
            note("control connection: a line longer than \(ControlClient.maximumLineBytes) bytes", severity: .error)
        }
    }

    /// One line from the copy: a sample, an event, `error`, `done`, or a reply.
    private func handle(_ line: JSONValue) {
        let elapsed = SnapshotDecoding.duration(seconds: line["t"]?.double ?? StatsJSON.seconds(latest.elapsed))
        switch line["event"]?.string {
        case "sample":
            guard var snapshot = SnapshotDecoding.snapshot(sample: line, start: start) else { return }
            let second = Int(StatsJSON.seconds(snapshot.elapsed))
            let newSecond = second > historySecond
            historySecond = max(historySecond, second)
            for index in snapshot.connections.indices {
                let connection = snapshot.connections[index]
                let key = Self.key(connection.laneID, connection.side.rawValue)
                var rates = history[key] ?? []
                if newSecond { rates = Array((rates + [connection.bytesPerSecond]).suffix(60)) }
                history[key] = rates
                snapshot.connections[index].rateHistory = rates
            }
            latest = snapshot
            connectionLabels = SnapshotDecoding.clientLabels(sample: line)
        case "error":
            let message = line["message"]?.string ?? "error"
            errorMessages.append(message)
            pending.append(.text(message, severity: .error, at: elapsed))
        case "done":
            exitStatus = Int32(line["exit"]?.int ?? 1)
            flush = line["flush"]?.string.flatMap(CopyOutcome.Flush.init(rawValue:))
        case .some:
            if let event = SnapshotDecoding.event(line) { pending.append(.event(event, at: elapsed)) }
        case nil:
            if line["ok"]?.bool == false {
                note("the copy refused: \(line["error"]?.string ?? "?")", severity: .warning)
            }
        }
    }

    private func send(_ command: ControlCommand) {
        guard !closed else { return }
        if let error = UnixStreamSocket.write(descriptor, command.line + "\n") {
            note("cannot send \(command.name): \(error)", severity: .warning)
        }
    }

    private func note(_ text: String, severity: EventSeverity) {
        pending.append(.text(text, severity: severity, at: latest.elapsed))
    }

    private static func key(_ laneID: Int, _ side: String) -> String { "\(laneID) \(side)" }
}
