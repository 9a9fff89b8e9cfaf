import Foundation
import NBDCopy
import NBDTestSupport
import NIOCore
import NIOPosix
import Synchronization
import Testing

/// A `pipe()` pair, closed at the end of the test.
final class TestPipe: @unchecked Sendable {
    private(set) var readEnd: Int32
    private(set) var writeEnd: Int32

    init() throws {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { throw TestSupportError("pipe: \(String(cString: strerror(errno)))") }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        readEnd = fds[0]
        writeEnd = fds[1]
    }

    func closeWriteEnd() {
        if writeEnd >= 0 { close(writeEnd) }
        writeEnd = -1
    }

    func closeReadEnd() {
        if readEnd >= 0 { close(readEnd) }
        readEnd = -1
    }

    deinit {
        closeReadEnd()
        closeWriteEnd()
    }

    /// Reads the read end on a thread of its own until EOF (the write end must be closed
    /// by then) and returns everything.
    func readToEnd() async -> [UInt8] {
        let fd = readEnd
        return await withCheckedContinuation { continuation in
            let thread = Thread {
                var bytes: [UInt8] = []
                var buffer = [UInt8](repeating: 0, count: 65536)
                while true {
                    let got = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                    if got > 0 {
                        bytes += buffer[..<got]
                    } else if got < 0 && errno == EINTR {
                        continue
                    } else {
                        break
                    }
                }
                continuation.resume(returning: bytes)
            }
            thread.start()
        }
    }

    /// Writes `bytes` to the write end on a thread of its own, then closes it.
    func feed(_ bytes: [UInt8]) {
        let fd = writeEnd
        writeEnd = -1
        let thread = Thread {
            var done = 0
            while done < bytes.count {
                let wrote = bytes[done...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                if wrote > 0 { done += wrote } else if errno != EINTR { break }
            }
            close(fd)
        }
        thread.start()
    }
}

@Suite struct PipeEndpointTests {
    @Test func facts() {
        let source = PipeEndpoint.stdin()
        #expect(source.size == nil)
        #expect(source.maximumConnections == 1)
        #expect(source.connectionLimitReason == "a pipe is read and written in order")
        #expect(source.isSequential && source.isReadOnly)
        #expect(!source.canZero && !source.canReportExtents && !source.startsZeroed)
        let destination = PipeEndpoint.stdout(size: 1234)
        #expect(destination.size == 1234)
        #expect(destination.maximumConnections == 1)
        #expect(destination.isSequential && !destination.isReadOnly)
        #expect(!destination.canZero && !destination.canReportExtents)
    }

    @Test func outOfOrderWritesComeOutInOrder() async throws {
        let pipe = try TestPipe()
        let chunk = 64 << 10
        let count = 24
        let total = chunk * count
        let endpoint = PipeEndpoint(writingTo: pipe.writeEnd, size: UInt64(total), name: "test pipe")
        let connection = try await EndpointTestConnection.connect(endpoint)
        async let output = pipe.readToEnd()

        // A fixed shuffle; chunk 5 is a zero range, chunk 9 comes in two pieces.
        var order = Array(0..<count)
        var seed: UInt64 = 12345
        for index in order.indices.reversed() {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            order.swapAt(index, Int(seed >> 33) % (index + 1))
        }
        let shuffled = order
        try await connection.onLoop { connection in
            let writes = shuffled.map { index -> EventLoopFuture<Void> in
                let offset = UInt64(index * chunk)
                if index == 5 { return connection.zeroFuture(offset: offset, length: UInt32(chunk), allocate: false) }
                let bytes = TestBytes.make(offset: offset, count: chunk)
                if index == 9 {
                    return connection.writeFuture([ByteBuffer(bytes: bytes[..<1000]), ByteBuffer(bytes: bytes[1000...])], at: offset)
                }
                return connection.writeFuture([ByteBuffer(bytes: bytes)], at: offset)
            }
            return EventLoopFuture.andAllSucceed(writes, on: connection.eventLoop)
        }
        try await connection.close()
        #expect(endpoint.position == UInt64(total))
        await endpoint.close()
        pipe.closeWriteEnd()

        var expected = TestBytes.make(offset: 0, count: total)
        expected.replaceSubrange(5 * chunk..<6 * chunk, with: repeatElement(0, count: chunk))
        let bytes = await output
        #expect(bytes.count == total)
        #expect(bytes == expected)
    }

    @Test func writesWaitForTheBytesBeforeThem() async throws {
        let pipe = try TestPipe()
        let endpoint = PipeEndpoint(writingTo: pipe.writeEnd, size: 200, name: "test pipe")
        let connection = try await EndpointTestConnection.connect(endpoint)
        async let output = pipe.readToEnd()

        let later = Mutex(false)
        try await connection.onLoop { connection in
            connection.writeFuture([ByteBuffer(bytes: TestBytes.make(offset: 100, count: 100))], at: 100)
                .whenSuccess { later.withLock { $0 = true } }
            return connection.eventLoop.makeSucceededVoidFuture()
        }
        try await Task.sleep(for: .milliseconds(100))
        #expect(later.withLock { $0 } == false, "held until offset 0 arrives")
        #expect(try await connection.inFlightCount == 1)

        // Overlapping what is held or written is refused.
        let overlap = await endpointErrorMessage { try await connection.write([1], at: 100) }
        #expect(overlap?.contains("test pipe") == true, "\(overlap ?? "")")

        try await connection.write(TestBytes.make(offset: 0, count: 100), at: 0)
        try await connection.close()
        #expect(later.withLock { $0 })
        let stale = await endpointErrorMessage { try await connection.write([1], at: 200) }
        #expect(stale != nil)
        pipe.closeWriteEnd()
        #expect(await output == TestBytes.make(offset: 0, count: 200))
    }

    @Test func closeFailsWritesThatCanNeverGoOut() async throws {
        let pipe = try TestPipe()
        let endpoint = PipeEndpoint(writingTo: pipe.writeEnd, size: 300, name: "test pipe")
        let connection = try await EndpointTestConnection.connect(endpoint)
        async let output = pipe.readToEnd()

        let result = try await connection.onLoop { connection -> EventLoopFuture<[Bool]> in
            let first = connection.writeFuture([ByteBuffer(bytes: TestBytes.make(offset: 0, count: 100))], at: 0)
            let stranded = connection.writeFuture([ByteBuffer(bytes: TestBytes.make(offset: 200, count: 100))], at: 200)
            let closed = connection.close()
            return EventLoopFuture.whenAllComplete([first, stranded], on: connection.eventLoop).flatMap { results in
                closed.map { results.map { if case .success = $0 { true } else { false } } }
            }
        }
        #expect(result == [true, false])
        // The stream goes on where it stopped, with a new connection.
        #expect(endpoint.position == 100)
        let next = try await EndpointTestConnection.connect(endpoint)
        try await next.write(TestBytes.make(offset: 100, count: 200), at: 100)
        try await next.close()
        pipe.closeWriteEnd()
        #expect(await output == TestBytes.make(offset: 0, count: 300))
    }

    @Test func readsInOrderToTheEnd() async throws {
        let pipe = try TestPipe()
        let total = 300_000
        let data = TestBytes.make(offset: 0, count: total, seed: 3)
        pipe.feed(data)
        let endpoint = PipeEndpoint(readingFrom: pipe.readEnd, name: "test input")
        #expect(endpoint.size == nil)
        let connection = try await EndpointTestConnection.connect(endpoint)

        // Several reads in flight at once, as the engine sends them.
        let chunk = 64 << 10
        let reads = try await connection.onLoop { connection -> EventLoopFuture<[[UInt8]]> in
            let futures = (0..<6).map { connection.readFuture(offset: UInt64($0 * chunk), length: UInt32(chunk)) }
            return EventLoopFuture.whenAllSucceed(futures, on: connection.eventLoop)
        }
        #expect(reads.map(\.count) == [chunk, chunk, chunk, chunk, total - 4 * chunk, 0])
        #expect(Array(reads.joined()) == data)
        #expect(endpoint.endOffset == UInt64(total))

        // At and after the end: nothing, which is how the end shows.
        #expect(try await connection.read(offset: UInt64(total), length: 100) == [])
        #expect(try await connection.onLoop { $0.readPieceCount(offset: UInt64(total), length: 100) } == 0)
        try await connection.close()
    }

    @Test func outOfOrderReadIsAnError() async throws {
        let pipe = try TestPipe()
        pipe.feed(TestBytes.make(offset: 0, count: 1000))
        let endpoint = PipeEndpoint(readingFrom: pipe.readEnd, name: "test input")
        let connection = try await EndpointTestConnection.connect(endpoint)

        let skipped = await endpointErrorMessage { _ = try await connection.read(offset: 100, length: 100) }
        #expect(skipped?.contains("test input") == true)
        #expect(skipped?.contains("out of order") == true, "\(skipped ?? "")")

        #expect(try await connection.read(offset: 0, length: 100) == TestBytes.make(offset: 0, count: 100))
        let again = await endpointErrorMessage { _ = try await connection.read(offset: 0, length: 100) }
        #expect(again?.contains("offset 0") == true, "\(again ?? "")")
        #expect(try await connection.read(offset: 100, length: 100) == TestBytes.make(offset: 100, count: 100))

        // One connection at a time; the next goes on where the last stopped.
        await #expect(throws: EndpointError.self) { _ = try await endpoint.connect(on: connection.eventLoop) }
        try await connection.close()
        let next = try await EndpointTestConnection.connect(endpoint)
        #expect(try await next.read(offset: 200, length: 2000) == TestBytes.make(offset: 200, count: 800))
        try await next.close()

        let wrongWay = await endpointErrorMessage { try await EndpointTestConnection.connect(endpoint).write([1], at: 0) }
        #expect(wrongWay?.contains("test input") == true)
    }

    @Test func brokenPipeFailsTheConnection() async throws {
        // The reader goes away: writes fail with EPIPE (SIGPIPE ignored, as nbdtop does).
        signal(SIGPIPE, SIG_IGN)
        let pipe = try TestPipe()
        pipe.closeReadEnd()
        let endpoint = PipeEndpoint(writingTo: pipe.writeEnd, size: 100, name: "test pipe")
        let connection = try await EndpointTestConnection.connect(endpoint)
        let message = await endpointErrorMessage { try await connection.write(TestBytes.make(offset: 0, count: 100), at: 0) }
        #expect(message?.contains("test pipe") == true)
        #expect(message?.contains("Broken pipe") == true, "\(message ?? "")")
        let after = await endpointErrorMessage { try await connection.write([1], at: 100) }
        #expect(after != nil)
        try await connection.close()
    }
}

extension EndpointConnection {
    /// How many pieces a READ returns.
    func readPieceCount(offset: UInt64, length: UInt32) -> EventLoopFuture<Int> {
        let promise = eventLoop.makePromise(of: Int.self)
        read(offset: offset, length: length) { promise.completeWith($0.map(\.count).mapError { $0 }) }
        return promise.futureResult
    }
}
