import NIOCore
import NIOPosix

/// The one connection to a pipe destination: writes are held until they are next in the
/// stream, then written in order, a batch at a time.
final class PipeWriterConnection: EndpointConnection {
    private struct QueuedWrite {
        var offset: UInt64
        var length: UInt64
        var chunk: PipeChunk
        var completion: (Result<Void, EndpointError>) -> Void
    }

    /// A batch written in one go on the thread pool stops growing at this many bytes.
    static let batchBytes: UInt64 = 32 << 20

    let endpoint: PipeEndpoint
    let eventLoop: any EventLoop
    /// The offset the next byte handed to the pipe has: everything before it is written
    /// or being written.
    private var streamOffset: UInt64
    /// Writes that arrived before the bytes in front of them, by offset.
    private var waiting: [UInt64: QueuedWrite] = [:]
    /// The batch being written on the thread pool.
    private var active: (token: UInt64, writes: [QueuedWrite])?
    private var nextToken: UInt64 = 0
    private var broken: EndpointError?
    private var state = ConnectionLifecycle.open

    init(endpoint: PipeEndpoint, eventLoop: any EventLoop, position: UInt64) {
        self.endpoint = endpoint
        self.eventLoop = eventLoop
        self.streamOffset = position
    }

    var inFlightCount: Int { waiting.count + (active?.writes.count ?? 0) }

    func flush(completion: @escaping (Result<Void, EndpointError>) -> Void) {
        endpoint.synchronize(on: eventLoop, completion: completion)
    }

    private var name: String { endpoint.displayName }

    func read(offset: UInt64, length: UInt32, completion: @escaping (Result<[ReadPiece], EndpointError>) -> Void) {
        completion(.failure(EndpointError(.request, "\(name): read at offset \(offset): a destination pipe cannot be read")))
    }

    func extents(offset: UInt64, length: UInt32, completion: @escaping (Result<[ImageExtent], EndpointError>) -> Void) {
        completion(.failure(EndpointError(.request, "\(name): a pipe cannot report extents")))
    }

    func write(_ pieces: [ByteBuffer], at offset: UInt64, completion: @escaping (Result<Void, EndpointError>) -> Void) {
        let length = pieces.reduce(UInt64(0)) { $0 + UInt64($1.readableBytes) }
        enqueue(QueuedWrite(offset: offset, length: length, chunk: .bytes(pieces), completion: completion))
    }

    /// Writes `length` zero bytes (a pipe cannot skip).
    func zero(offset: UInt64, length: UInt32, allocate: Bool, completion: @escaping (Result<Void, EndpointError>) -> Void) {
        enqueue(QueuedWrite(offset: offset, length: UInt64(length), chunk: .zeros(UInt64(length)), completion: completion))
    }

    private func enqueue(_ write: QueuedWrite) {
        eventLoop.preconditionInEventLoop()
        guard case .open = state else {
            write.completion(.failure(EndpointError(.connection, "\(name): the connection is closed")))
            return
        }
        if let broken {
            write.completion(.failure(broken))
            return
        }
        guard write.offset >= streamOffset, waiting[write.offset] == nil else {
            write.completion(.failure(EndpointError(.request, "\(name): write at offset \(write.offset) overlaps bytes "
                                                    + "already written (a pipe is written once, in order)")))
            return
        }
        guard write.length > 0 else {
            write.completion(.success(()))
            return
        }
        waiting[write.offset] = write
        startNext()
    }

    /// Starts writing the writes that are next in the stream, if nothing is being written.
    private func startNext() {
        guard active == nil, broken == nil else { return }
        var batch: [QueuedWrite] = []
        var position = streamOffset
        var bytes: UInt64 = 0
        while bytes < Self.batchBytes, let next = waiting.removeValue(forKey: position) {
            batch.append(next)
            position += next.length
            bytes += next.length
        }
        guard !batch.isEmpty else {
            finishClosingIfIdle()
            return
        }
        let token = nextToken
        nextToken &+= 1
        active = (token, batch)
        let firstOffset = streamOffset
        streamOffset = position
        let chunks = batch.map(\.chunk)
        let descriptor = endpoint.descriptor
        let name = self.name
        endpoint.threadPool.runIfActive(eventLoop: eventLoop) {
            try PipeIO.write(descriptor, chunks, at: firstOffset, name: name,
                             closedError: { EndpointError(.connection, "\(name): closed") })
        }.assumeIsolated().whenComplete { result in
            self.finish(token: token, result: result)
        }
    }

    private func finish(token: UInt64, result: Result<Void, any Error>) {
        guard let (activeToken, writes) = active, activeToken == token else { return }  // aborted
        active = nil
        switch result {
        case .success:
            for write in writes { write.completion(.success(())) }
            startNext()
        case .failure(let error):
            // A broken pipe stays broken: fail this batch and everything held back.
            let message = (error as? EndpointError)?.message ?? "\(name): cannot run blocking I/O: \(error)"
            let failure = EndpointError(.connection, message)
            broken = failure
            for write in writes { write.completion(.failure(failure)) }
            failWaiting(failure)
            close(broken: "writing failed: \(message)")
        }
    }

    private func failWaiting(_ error: EndpointError) {
        let held = waiting.values.sorted { $0.offset < $1.offset }
        waiting.removeAll()
        for write in held { write.completion(.failure(error)) }
    }

    func close() -> EventLoopFuture<Void> {
        eventLoop.preconditionInEventLoop()
        let (closed, started) = state.beginClosing(on: eventLoop)
        if started && active == nil { startNext() }
        return closed
    }

    func abort() {
        eventLoop.preconditionInEventLoop()
        if state.isClosed { return }
        let running = active?.writes ?? []
        active = nil
        let error = EndpointError(.connection, "\(name): connection aborted")
        for write in running { write.completion(.failure(error)) }
        failWaiting(error)
        // A batch cut off half way leaves the stream at an unknown offset.
        close(broken: running.isEmpty ? nil
              : "a connection was aborted while writing at offset \(running[0].offset); the output is incomplete")
    }

    /// Called when nothing is being written and nothing that is next has arrived: writes
    /// still held wait for bytes that will not come any more.
    private func finishClosingIfIdle() {
        guard case .closing = state, active == nil else { return }
        if let first = waiting.values.min(by: { $0.offset < $1.offset }) {
            failWaiting(EndpointError(.connection, "\(name): write at offset \(first.offset) was never written: "
                                      + "the bytes from offset \(streamOffset) did not arrive before the connection closed"))
        }
        close(broken: nil)
    }

    private func close(broken: String?) {
        guard !state.isClosed else { return }
        let closing = state.markClosed()
        endpoint.release(position: streamOffset, end: nil, broken: broken)
        closing?.succeed()
    }
}
