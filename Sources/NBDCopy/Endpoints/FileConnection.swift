import NIOCore

/// A handle on a `FileEndpoint` for one lane.
final class FileConnection: EndpointConnection {
    let file: FileIO
    let isReadOnly: Bool
    let requests: PoolRequests

    init(file: FileIO, isReadOnly: Bool, requests: PoolRequests) {
        self.file = file
        self.isReadOnly = isReadOnly
        self.requests = requests
    }

    var eventLoop: any EventLoop { requests.eventLoop }
    var inFlightCount: Int { requests.inFlightCount }

    func read(offset: UInt64, length: UInt32, completion: @escaping (Result<[ReadPiece], EndpointError>) -> Void) {
        let file = self.file
        requests.run({ try file.read(offset: offset, length: length) }, completion: { result in
            completion(result.map { [ReadPiece.data(offset: offset, bytes: $0)] })
        })
    }

    func write(_ pieces: [ByteBuffer], at offset: UInt64, completion: @escaping (Result<Void, EndpointError>) -> Void) {
        guard !isReadOnly else {
            completion(.failure(EndpointError(.request, "\(file.path): write at offset \(offset): opened read-only")))
            return
        }
        let file = self.file
        requests.run({ try file.write(pieces, at: offset) }, completion: completion)
    }

    func zero(offset: UInt64, length: UInt32, allocate: Bool, completion: @escaping (Result<Void, EndpointError>) -> Void) {
        guard !isReadOnly else {
            completion(.failure(EndpointError(.request, "\(file.path): zero at offset \(offset): opened read-only")))
            return
        }
        let file = self.file
        requests.run({ try file.zero(offset: offset, length: UInt64(length), allocate: allocate) }, completion: completion)
    }

    func extents(offset: UInt64, length: UInt32, completion: @escaping (Result<[ImageExtent], EndpointError>) -> Void) {
        let file = self.file
        requests.run({ try file.extents(offset: offset, length: UInt64(length)) }, completion: completion)
    }

    /// fsync, on the thread pool like every other request.
    func flush(completion: @escaping (Result<Void, EndpointError>) -> Void) {
        let file = self.file
        requests.run({ try file.synchronize() }, completion: completion)
    }

    func close() -> EventLoopFuture<Void> { requests.close() }

    func abort() { requests.abort(reason: "connection aborted") }
}
