import DequeModule
import NIOCore
import NIOPosix

/// The one connection to a pipe source: reads run one at a time, in order.
final class PipeReaderConnection: EndpointConnection {
    private struct QueuedRead {
        var offset: UInt64
        var length: UInt32
        var completion: (Result<[ReadPiece], EndpointError>) -> Void
    }

    let endpoint: PipeEndpoint
    let eventLoop: any EventLoop
    /// Where the next request must start.
    private var nextOffset: UInt64
    /// Where the input ended, once known.
    private var end: UInt64?
    private var queue = Deque<QueuedRead>()
    /// The read running on the thread pool.
    private var active: (token: UInt64, read: QueuedRead)?
    private var nextToken: UInt64 = 0
    private var state = ConnectionLifecycle.open

    init(endpoint: PipeEndpoint, eventLoop: any EventLoop, position: UInt64, end: UInt64?) {
        self.endpoint = endpoint
        self.eventLoop = eventLoop
        self.nextOffset = position
        self.end = end
    }

    var inFlightCount: Int { queue.count + (active == nil ? 0 : 1) }

    func flush(completion: @escaping (Result<Void, EndpointError>) -> Void) {
        completion(.success(()))
    }

    private var name: String { endpoint.displayName }

    func read(offset: UInt64, length: UInt32, completion: @escaping (Result<[ReadPiece], EndpointError>) -> Void) {
        eventLoop.preconditionInEventLoop()
        guard case .open = state else {
            completion(.failure(EndpointError(.connection, "\(name): the connection is closed")))
            return
        }
        if let end, offset >= end {
            completion(.success([]))
            return
        }
        guard offset == nextOffset else {
            completion(.failure(EndpointError(.request, "\(name): read at offset \(offset) is out of order: "
                                              + "a pipe is read in order, and the next read starts at offset \(nextOffset)")))
            return
        }
        nextOffset += UInt64(length)
        queue.append(QueuedRead(offset: offset, length: length, completion: completion))
        startNext()
    }

    func write(_ pieces: [ByteBuffer], at offset: UInt64, completion: @escaping (Result<Void, EndpointError>) -> Void) {
        completion(.failure(EndpointError(.request, "\(name): write at offset \(offset): a source pipe cannot be written")))
    }

    func zero(offset: UInt64, length: UInt32, allocate: Bool, completion: @escaping (Result<Void, EndpointError>) -> Void) {
        completion(.failure(EndpointError(.request, "\(name): zero at offset \(offset): a source pipe cannot be written")))
    }

    func extents(offset: UInt64, length: UInt32, completion: @escaping (Result<[ImageExtent], EndpointError>) -> Void) {
        completion(.failure(EndpointError(.request, "\(name): a pipe cannot report extents")))
    }

    private func startNext() {
        guard active == nil else { return }
        while let next = queue.popFirst() {
            if let end, next.offset >= end {
                next.completion(.success([]))
                continue
            }
            let token = nextToken
            nextToken &+= 1
            active = (token, next)
            let descriptor = endpoint.descriptor
            let name = self.name
            let count = Int(next.length), offset = next.offset
            endpoint.threadPool.runIfActive(eventLoop: eventLoop) {
                try PipeIO.read(descriptor, count: count, at: offset, name: name,
                                closedError: { EndpointError(.connection, "\(name): closed") })
            }.assumeIsolated().whenComplete { result in
                self.finish(token: token, result: result)
            }
            return
        }
        finishClosingIfIdle()
    }

    private func finish(token: UInt64, result: Result<ByteBuffer, any Error>) {
        guard let (activeToken, read) = active, activeToken == token else { return }  // aborted
        active = nil
        switch result {
        case .success(let bytes):
            if bytes.readableBytes < Int(read.length) {
                let end = read.offset + UInt64(bytes.readableBytes)
                self.end = end
                endpoint.reachedEnd(at: end)
            }
            read.completion(.success(bytes.readableBytes > 0 ? [.data(offset: read.offset, bytes: bytes)] : []))
            startNext()
        case .failure(let error):
            // How much of the stream the failed read used up is unknown: nothing can follow.
            let failure = error as? EndpointError
                ?? EndpointError(.connection, "\(name): cannot run blocking I/O: \(error)")
            let reason = "reading failed at offset \(read.offset): \(failure.message)"
            failEverything(EndpointError(.connection, failure.message), first: read)
            close(position: read.offset, broken: reason)
        }
    }

    private func failEverything(_ error: EndpointError, first: QueuedRead?) {
        let queued = queue
        queue.removeAll()
        first?.completion(.failure(error))
        for read in queued { read.completion(.failure(error)) }
    }

    func close() -> EventLoopFuture<Void> {
        eventLoop.preconditionInEventLoop()
        let (closed, started) = state.beginClosing(on: eventLoop)
        if started { finishClosingIfIdle() }
        return closed
    }

    func abort() {
        eventLoop.preconditionInEventLoop()
        guard !isClosed else { return }
        let running = active?.read
        active = nil
        let position = running?.offset ?? queue.first?.offset ?? nextOffset
        failEverything(EndpointError(.connection, "\(name): connection aborted"), first: running)
        close(position: position, broken: running.map {
            "bytes from offset \($0.offset) were read and dropped when a connection was aborted"
        })
    }

    private var isClosed: Bool { state.isClosed }

    private func finishClosingIfIdle() {
        guard case .closing = state, active == nil, queue.isEmpty else { return }
        close(position: nextOffset, broken: nil)
    }

    /// Hands the stream back to the endpoint and completes a pending `close()`.
    private func close(position: UInt64, broken: String?) {
        guard !state.isClosed else { return }
        let closing = state.markClosed()
        endpoint.release(position: min(position, end ?? position), end: end, broken: broken)
        closing?.succeed()
    }
}
