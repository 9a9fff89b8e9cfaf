import NBD
import NIOCore
import NIOPosix
#if canImport(Glibc)
import Glibc
#endif

/// Reads a whole export to nowhere over N connections, to time the NBD client alone.
///
/// usage: nbd-read-bench URI CONNECTIONS REQUESTS REQUEST_SIZE
/// Each connection keeps REQUESTS reads in flight and takes every Nth request-sized
/// stripe of the export. Prints "bytes seconds".

/// Keeps one connection's reads going, on its event loop.
final class StripeReader {
    let connection: NBDConnection
    let size: UInt64
    let requestSize: UInt64
    let stride: UInt64
    var nextOffset: UInt64
    var inFlight = 0
    let done: EventLoopPromise<UInt64>
    var bytes: UInt64 = 0

    init(connection: NBDConnection, index: Int, count: Int, requestSize: UInt64) {
        self.connection = connection
        self.size = connection.info.size
        self.requestSize = requestSize
        self.stride = requestSize * UInt64(count)
        self.nextOffset = requestSize * UInt64(index)
        self.done = connection.eventLoop.makePromise()
    }

    func start(depth: Int) {
        for _ in 0..<depth { issue() }
        if inFlight == 0 { done.succeed(0) }
    }

    private func issue() {
        guard nextOffset < size else { return }
        let offset = nextOffset
        nextOffset += stride
        let length = UInt32(min(requestSize, size - offset))
        inFlight += 1
        connection.submit(.read(offset: offset, length: length), onChunk: { chunk in
            if case .data(_, let data) = chunk { self.bytes += UInt64(data.readableBytes) }
            if case .hole(_, let holeLength) = chunk { self.bytes += UInt64(holeLength) }
        }, onComplete: { result in
            self.inFlight -= 1
            if case .failure(let error) = result {
                self.done.fail(error)
                return
            }
            self.issue()
            if self.inFlight == 0 { self.done.succeed(self.bytes) }
        })
    }
}

let arguments = CommandLine.arguments
guard arguments.count == 5, let connections = Int(arguments[2]), let depth = Int(arguments[3]),
      let requestSize = UInt64(arguments[4]) else {
    print("usage: nbd-read-bench URI CONNECTIONS REQUESTS REQUEST_SIZE")
    exit(2)
}
let uri = try NBDURI.parse(arguments[1])
var opened: [NBDConnection] = []
for _ in 0..<connections {
    opened.append(try await NBDConnection.connect(to: uri))
}
let clock = ContinuousClock()
let start = clock.now
var results: [EventLoopFuture<UInt64>] = []
for (index, connection) in opened.enumerated() {
    let future = try await connection.eventLoop.submit {
        let reader = StripeReader(connection: connection, index: index, count: connections, requestSize: requestSize)
        reader.start(depth: depth)
        return reader.done.futureResult
    }.get()
    results.append(future)
}
var total: UInt64 = 0
for result in results { total += try await result.get() }
let elapsed = clock.now - start
for connection in opened { await connection.disconnect() }
let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
print("\(total) \(seconds)")
