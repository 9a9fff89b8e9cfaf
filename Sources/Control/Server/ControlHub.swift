import NIOCore
import Synchronization
import Telemetry

/// The clients of one control socket, and what they are sent: a `hello` when they
/// connect, then every event line as it is published and a sample at each client's own
/// interval.
///
/// Nothing here waits for a client. Lines are queued on each client's channel; a client
/// whose queue passes the channel's high water mark (it stopped reading) is closed, so a
/// slow or hostile client costs at most that much memory and never slows the copy.
public final class ControlHub: Sendable {
    private struct Client {
        let channel: any Channel
        var interval: Duration
        var nextSample: ContinuousClock.Instant
        /// Until the hello is queued the client gets nothing else, so it is always first.
        var greeted = false
        /// Replies to commands sent before the hello, sent right after it.
        var heldReplies: [String] = []
        /// Close once the held replies are sent.
        var closeAfterReplies = false
    }

    private struct State {
        var clients: [ObjectIdentifier: Client] = [:]
        /// The latest event lines, oldest first, for the hellos of clients that come later.
        var recentEvents: [String] = []
        var sampler: Task<Void, Never>?
        var stopped = false
    }

    private let target: any ControlTarget
    private let defaultInterval: Duration
    private let maximumRecentEvents: Int
    /// Writes queue on each channel in the order they are made under this lock, so a client
    /// never misses an event between its hello and the stream, nor sees one twice.
    private let state = Mutex(State())

    /// How often the sampler looks for clients due a sample; the shortest interval a
    /// client may ask for is the same.
    static let samplerTick = Duration.milliseconds(100)

    /// `defaultInterval`: the sample interval of a client that has not asked for one.
    public init(target: any ControlTarget, defaultInterval: Duration, maximumRecentEvents: Int = 100) {
        self.target = target
        self.defaultInterval = defaultInterval
        self.maximumRecentEvents = maximumRecentEvents
    }

    /// Clients connected now (greeted or not).
    public var clientCount: Int { state.withLock { $0.clients.count } }

    /// Sends `line` (an event, as `--stats-json` writes it) to every client, and keeps it
    /// for the hellos of clients that connect later.
    public func publish(_ line: String) {
        state.withLock { state in
            state.recentEvents.append(line)
            if state.recentEvents.count > maximumRecentEvents {
                state.recentEvents.removeFirst(state.recentEvents.count - maximumRecentEvents)
            }
            for client in state.clients.values where client.greeted {
                client.channel.sendLine(line)
            }
        }
    }

    // MARK: Clients

    /// Takes a client whose peer was checked, once its channel is active: greets it, then
    /// streams to it until it closes.
    func attach(_ channel: any Channel) {
        let id = ObjectIdentifier(channel)
        let admitted = state.withLock { state -> Bool in
            guard !state.stopped else { return false }
            state.clients[id] = Client(channel: channel, interval: defaultInterval, nextSample: .now + defaultInterval)
            if state.sampler == nil { state.sampler = Task { await self.runSampler() } }
            return true
        }
        guard admitted else {
            channel.close(promise: nil)
            return
        }
        channel.closeFuture.whenComplete { _ in
            self.state.withLock { _ = $0.clients.removeValue(forKey: id) }
        }
        Task {
            let members = await target.helloMembers()
            state.withLock { state in
                guard state.clients[id] != nil else { return }
                let events = JSONValue.array(state.recentEvents.map { .raw($0) })
                channel.sendLine(JSONValue.object([("v", .int(1)), ("event", .string("hello"))] + members
                                                  + [("events", events)]).compact)
                state.clients[id]?.greeted = true
                for reply in state.clients[id]?.heldReplies ?? [] { channel.sendLine(reply) }
                state.clients[id]?.heldReplies = []
                if state.clients[id]?.closeAfterReplies == true { channel.closeAfterQueuedLines() }
            }
        }
    }

    /// Replies before the hello are held; a client that sends more than this many lines
    /// before it could have read the hello is closed.
    static let maximumHeldReplies = 64

    /// Sends a reply to `channel`'s client, after its hello; with `thenClose`, closes the
    /// client once it is written.
    func reply(_ line: String, to channel: any Channel, thenClose: Bool = false) {
        state.withLock { state in
            let id = ObjectIdentifier(channel)
            guard let client = state.clients[id], !client.greeted else {
                channel.sendLine(line)
                if thenClose { channel.closeAfterQueuedLines() }
                return
            }
            guard client.heldReplies.count < Self.maximumHeldReplies else {
                channel.close(promise: nil)
                return
            }
            state.clients[id]?.heldReplies.append(line)
            if thenClose { state.clients[id]?.closeAfterReplies = true }
        }
    }

    /// Samples `channel`'s client every `interval` from now on.
    func setInterval(_ interval: Duration, for channel: any Channel) {
        state.withLock { state in
            state.clients[ObjectIdentifier(channel)]?.interval = interval
            state.clients[ObjectIdentifier(channel)]?.nextSample = .now + interval
        }
    }

    /// Carries out a command for a client.
    func perform(_ command: ControlCommand) async throws(ControlCommandError) -> [(String, JSONValue)] {
        try await target.perform(command)
    }

    /// Takes one snapshot whenever some greeted client is due, and sends it to every client
    /// that is due: one snapshot and one encoding however many clients there are.
    private func runSampler() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: Self.samplerTick)
            let due = state.withLock { state in
                let now = ContinuousClock.now
                return state.clients.values.contains { $0.greeted && $0.nextSample <= now }
            }
            guard due else { continue }
            let line = await target.sampleLine()
            state.withLock { state in
                let now = ContinuousClock.now
                for (id, client) in state.clients where client.greeted && client.nextSample <= now {
                    client.channel.sendLine(line)
                    state.clients[id]?.nextSample = now + client.interval
                }
            }
        }
    }

    /// Stops sampling and closes every client; later clients are turned away.
    func stop() -> [any Channel] {
        state.withLock { state in
            state.stopped = true
            state.sampler?.cancel()
            state.sampler = nil
            defer { state.clients = [:] }
            return state.clients.values.map(\.channel)
        }
    }
}

extension Channel {
    /// Queues `line` and a newline, from any thread; closes the channel instead when its
    /// queued output is past the high water mark: the peer is not reading.
    func sendLine(_ line: String) {
        var buffer = allocator.buffer(capacity: line.utf8.count + 1)
        buffer.writeString(line)
        buffer.writeInteger(UInt8(ascii: "\n"))
        eventLoop.execute { [buffer] in
            guard self.isActive else { return }
            self.writeAndFlush(buffer, promise: nil)
            if !self.isWritable { self.close(promise: nil) }
        }
    }

    /// Ends the output after the lines queued so far (`sendLine` queues on the loop), and
    /// closes the channel a little later. Closing at once, with the peer's bytes unread,
    /// would reset the connection and lose those lines on the peer's side.
    func closeAfterQueuedLines() {
        eventLoop.execute {
            self.close(mode: .output, promise: nil)
            self.eventLoop.scheduleTask(in: .seconds(5)) { self.close(promise: nil) }
        }
    }
}
