import Foundation
import NBDCopy
import NBDTestSupport
import NIOCore
import NIOPosix
import Testing

/// Drives an `EndpointConnection` from async tests: every call hops onto the
/// connection's event loop, as the protocol demands, and waits for its completion.
/// (Also used by PipeEndpointTests.)
struct EndpointTestConnection: Sendable {
    let bound: NIOLoopBound<any EndpointConnection>
    var eventLoop: any EventLoop { bound.eventLoop }

    static func connect(_ endpoint: any CopyEndpoint,
                        on eventLoop: any EventLoop = MultiThreadedEventLoopGroup.singleton.next()) async throws -> EndpointTestConnection {
        EndpointTestConnection(bound: try await endpoint.connect(on: eventLoop))
    }

    /// Runs `body` on the event loop and waits for the future it returns.
    func onLoop<T: Sendable>(_ body: @escaping @Sendable (any EndpointConnection) -> EventLoopFuture<T>) async throws -> T {
        let bound = self.bound
        return try await eventLoop.flatSubmit { body(bound.value) }.get()
    }

    func flush() async throws {
        try await onLoop { connection in
            let promise = connection.eventLoop.makePromise(of: Void.self)
            connection.flush { promise.completeWith($0.mapError { $0 }) }
            return promise.futureResult
        }
    }

    func read(offset: UInt64, length: UInt32) async throws -> [UInt8] {
        try await onLoop { $0.readFuture(offset: offset, length: length) }
    }

    func write(_ bytes: [UInt8], at offset: UInt64) async throws {
        try await onLoop { $0.writeFuture([ByteBuffer(bytes: bytes)], at: offset) }
    }

    func write(pieces: [[UInt8]], at offset: UInt64) async throws {
        try await onLoop { $0.writeFuture(pieces.map { ByteBuffer(bytes: $0) }, at: offset) }
    }

    func zero(offset: UInt64, length: UInt32, allocate: Bool = false) async throws {
        try await onLoop { $0.zeroFuture(offset: offset, length: length, allocate: allocate) }
    }

    func extents(offset: UInt64, length: UInt32) async throws -> [ImageExtent] {
        try await onLoop { $0.extentsFuture(offset: offset, length: length) }
    }

    var inFlightCount: Int {
        get async throws {
            let bound = self.bound
            return try await eventLoop.submit { bound.value.inFlightCount }.get()
        }
    }

    func close() async throws {
        try await onLoop { $0.close() }
    }

    func abort() async throws {
        let bound = self.bound
        try await eventLoop.submit { bound.value.abort() }.get()
    }
}

extension EndpointConnection {
    /// READ as a future of the bytes covered, in order, holes as zeroes.
    func readFuture(offset: UInt64, length: UInt32) -> EventLoopFuture<[UInt8]> {
        let promise = eventLoop.makePromise(of: [UInt8].self)
        read(offset: offset, length: length) { result in
            switch result {
            case .failure(let error): promise.fail(error)
            case .success(let pieces):
                var bytes: [UInt8] = []
                var covered = 0
                for piece in pieces {
                    let (start, count): (UInt64, Int)
                    switch piece {
                    case .data(let pieceOffset, let buffer): (start, count) = (pieceOffset, buffer.readableBytes)
                    case .zero(let pieceOffset, let pieceLength): (start, count) = (pieceOffset, Int(pieceLength))
                    }
                    let end = Int(start - offset) + count
                    if bytes.count < end { bytes += [UInt8](repeating: 0, count: end - bytes.count) }
                    if case .data(_, let buffer) = piece {
                        bytes.replaceSubrange(Int(start - offset)..<end, with: buffer.readableBytesView)
                    }
                    covered += count
                }
                if covered != bytes.count {
                    promise.fail(EndpointError(.request, "test: pieces overlap or leave gaps"))
                } else {
                    promise.succeed(bytes)
                }
            }
        }
        return promise.futureResult
    }

    func writeFuture(_ pieces: [ByteBuffer], at offset: UInt64) -> EventLoopFuture<Void> {
        let promise = eventLoop.makePromise(of: Void.self)
        write(pieces, at: offset) { promise.completeWith($0.mapError { $0 }) }
        return promise.futureResult
    }

    func zeroFuture(offset: UInt64, length: UInt32, allocate: Bool) -> EventLoopFuture<Void> {
        let promise = eventLoop.makePromise(of: Void.self)
        zero(offset: offset, length: length, allocate: allocate) { promise.completeWith($0.mapError { $0 }) }
        return promise.futureResult
    }

    func extentsFuture(offset: UInt64, length: UInt32) -> EventLoopFuture<[ImageExtent]> {
        let promise = eventLoop.makePromise(of: [ImageExtent].self)
        extents(offset: offset, length: length) { promise.completeWith($0.mapError { $0 }) }
        return promise.futureResult
    }
}

/// The message of an `EndpointError` thrown by `body`, or nil when it did not throw one.
func endpointErrorMessage(_ body: () async throws -> Void) async -> String? {
    do {
        try await body()
        return nil
    } catch let error as EndpointError {
        return error.message
    } catch {
        return "not an EndpointError: \(error)"
    }
}

/// Whether `offset` lies in an extent reported as zero (nil when no extent covers it).
func isZero(at offset: UInt64, in extents: [ImageExtent]) -> Bool? {
    extents.first { $0.offset <= offset && offset < $0.end }?.isZero
}

@Suite struct FileEndpointTests {
    static let mib: UInt64 = 1 << 20

    @Test func newFileFacts() throws {
        let folder = try TemporaryDirectory(prefix: "nbdtop-file")
        defer { folder.remove() }
        let path = folder.file("new.img")
        let endpoint = try FileEndpoint.open(path: path, forWriting: true, createWithSize: 4 * Self.mib)
        #expect(endpoint.size == 4 * Self.mib)
        #expect(endpoint.kind == .regularFile)
        #expect(endpoint.startsZeroed)
        #expect(endpoint.canZero && endpoint.canReportExtents)
        #expect(!endpoint.isSequential && !endpoint.isReadOnly)
        #expect(endpoint.maximumConnections >= 16)
        #expect(endpoint.displayName == path)
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attributes[.size] as? NSNumber)?.uint64Value == 4 * Self.mib)

        let source = try FileEndpoint.open(path: path, forWriting: false, createWithSize: nil)
        #expect(source.isReadOnly && !source.startsZeroed)
        #expect(source.size == 4 * Self.mib)
    }

    @Test func roundTripZeroAndExtents() async throws {
        let folder = try TemporaryDirectory(prefix: "nbdtop-file")
        defer { folder.remove() }
        let size = 4 * Self.mib
        let endpoint = try FileEndpoint.open(path: folder.file("disk.img"), forWriting: true, createWithSize: size)
        let connection = try await EndpointTestConnection.connect(endpoint)

        // [0, 2M) in two writes of two pieces each, [3M, 3.5M) in one: all in flight at once.
        let half = Int(Self.mib / 2)
        try await connection.onLoop { connection in
            let writes = [
                connection.writeFuture([ByteBuffer(bytes: TestBytes.make(offset: 0, count: half)),
                                        ByteBuffer(bytes: TestBytes.make(offset: UInt64(half), count: half))], at: 0),
                connection.writeFuture([ByteBuffer(bytes: TestBytes.make(offset: Self.mib, count: half)),
                                        ByteBuffer(bytes: TestBytes.make(offset: Self.mib + UInt64(half), count: half))], at: Self.mib),
                connection.writeFuture([ByteBuffer(bytes: TestBytes.make(offset: 3 * Self.mib, count: half))], at: 3 * Self.mib),
            ]
            return EventLoopFuture.andAllSucceed(writes, on: connection.eventLoop)
        }
        #expect(try await connection.read(offset: 0, length: UInt32(2 * Self.mib)) == TestBytes.make(offset: 0, count: 2 * Int(Self.mib)))
        #expect(try await connection.read(offset: 3 * Self.mib + 100, length: 1000) == TestBytes.make(offset: 3 * Self.mib + 100, count: 1000))
        // Never written: reads as zero.
        #expect(try await connection.read(offset: 2 * Self.mib, length: 4096).allSatisfy { $0 == 0 })

        // Zero [1M, 2M): a punched hole.
        try await connection.zero(offset: Self.mib, length: UInt32(Self.mib))
        #expect(try await connection.read(offset: Self.mib, length: UInt32(Self.mib)).allSatisfy { $0 == 0 })
        #expect(try await connection.read(offset: Self.mib - 10, length: 10) == TestBytes.make(offset: Self.mib - 10, count: 10))

        // Zero in place (allocate) an unaligned range inside the data at [3M, 3.5M).
        try await connection.zero(offset: 3 * Self.mib + 1000, length: 5000, allocate: true)
        let around = try await connection.read(offset: 3 * Self.mib, length: 8192)
        #expect(Array(around[1000..<6000]).allSatisfy { $0 == 0 })
        #expect(Array(around[..<1000]) == TestBytes.make(offset: 3 * Self.mib, count: 1000))
        #expect(Array(around[6000...]) == TestBytes.make(offset: 3 * Self.mib + 6000, count: 8192 - 6000))

        let extents = try await connection.extents(offset: 0, length: UInt32(size))
        // Back to back from 0 to the end, never beyond.
        #expect(extents.first?.offset == 0)
        #expect(extents.last?.end == size)
        for (previous, next) in zip(extents, extents.dropFirst()) {
            #expect(previous.end == next.offset)
            #expect(previous.isZero != next.isZero, "adjacent extents of one kind are merged")
        }
        #expect(isZero(at: Self.mib / 2, in: extents) == false)
        #expect(isZero(at: Self.mib + Self.mib / 2, in: extents) == true, "the hole made by zero()")
        #expect(isZero(at: 2 * Self.mib + Self.mib / 2, in: extents) == true, "never written")
        #expect(isZero(at: 3 * Self.mib + 100_000, in: extents) == false)
        #expect(isZero(at: 3 * Self.mib + Self.mib * 3 / 4, in: extents) == true)

        // A window in the middle starts where asked.
        let window = try await connection.extents(offset: Self.mib / 2, length: UInt32(Self.mib))
        #expect(window.first?.offset == Self.mib / 2)
        #expect(window.first?.isZero == false)
        #expect((window.last?.end ?? 0) <= Self.mib / 2 + Self.mib)

        try await connection.flush()
        try await connection.close()
        await endpoint.close()
    }

    @Test func sparseFileExtents() async throws {
        let folder = try TemporaryDirectory(prefix: "nbdtop-file")
        defer { folder.remove() }
        let path = folder.file("sparse.img")
        let size = 8 * Self.mib
        #expect(FileManager.default.createFile(atPath: path, contents: nil))
        #expect(truncate(path, off_t(size)) == 0)

        let empty = try FileEndpoint.open(path: path, forWriting: false, createWithSize: nil)
        let connection = try await EndpointTestConnection.connect(empty)
        #expect(try await connection.extents(offset: 0, length: UInt32(size)) == [ImageExtent(offset: 0, length: size, isZero: true)])
        #expect(try await connection.read(offset: 5 * Self.mib, length: 65536).allSatisfy { $0 == 0 })
        try await connection.close()
        await empty.close()

        // Data at [2M, 3M) and the last 4 KiB.
        let handle = try #require(FileHandle(forWritingAtPath: path))
        try handle.seek(toOffset: 2 * Self.mib)
        handle.write(Data(TestBytes.make(offset: 2 * Self.mib, count: Int(Self.mib))))
        try handle.seek(toOffset: size - 4096)
        handle.write(Data(TestBytes.make(offset: size - 4096, count: 4096)))
        try handle.close()

        let source = try FileEndpoint.open(path: path, forWriting: false, createWithSize: nil)
        let reader = try await EndpointTestConnection.connect(source)
        let extents = try await reader.extents(offset: 0, length: UInt32(size))
        #expect(extents == [
            ImageExtent(offset: 0, length: 2 * Self.mib, isZero: true),
            ImageExtent(offset: 2 * Self.mib, length: Self.mib, isZero: false),
            ImageExtent(offset: 3 * Self.mib, length: size - 4096 - 3 * Self.mib, isZero: true),
            ImageExtent(offset: size - 4096, length: 4096, isZero: false),
        ])
        // A window that starts inside a hole and ends inside data.
        #expect(try await reader.extents(offset: Self.mib, length: UInt32(Self.mib + 4096)) == [
            ImageExtent(offset: Self.mib, length: Self.mib, isZero: true),
            ImageExtent(offset: 2 * Self.mib, length: 4096, isZero: false),
        ])
        #expect(try await reader.read(offset: 2 * Self.mib, length: UInt32(Self.mib)) == TestBytes.make(offset: 2 * Self.mib, count: Int(Self.mib)))
        try await reader.close()
        await source.close()
    }

    @Test func existingFileIsTruncatedAsDestination() async throws {
        let folder = try TemporaryDirectory(prefix: "nbdtop-file")
        defer { folder.remove() }
        let path = folder.file("old.img")
        #expect(FileManager.default.createFile(atPath: path, contents: Data(TestBytes.make(offset: 0, count: 3 << 20))))

        // Without a size, the file is opened as it is.
        let kept = try FileEndpoint.open(path: path, forWriting: true, createWithSize: nil)
        #expect(kept.size == 3 << 20)
        #expect(!kept.startsZeroed)
        await kept.close()

        let endpoint = try FileEndpoint.open(path: path, forWriting: true, createWithSize: 2 << 20)
        #expect(endpoint.size == 2 << 20)
        #expect(endpoint.startsZeroed)
        let connection = try await EndpointTestConnection.connect(endpoint)
        #expect(try await connection.read(offset: 0, length: 2 << 20).allSatisfy { $0 == 0 })
        #expect(try await connection.extents(offset: 0, length: 2 << 20) == [ImageExtent(offset: 0, length: 2 << 20, isZero: true)])
        try await connection.close()
        await endpoint.close()
    }

    @Test func sourceIsNeverTruncatedAsDestination() async throws {
        let folder = try TemporaryDirectory(prefix: "nbdtop-file")
        defer { folder.remove() }
        let path = folder.file("same.img")
        let data = TestBytes.make(offset: 0, count: 1 << 20)
        #expect(FileManager.default.createFile(atPath: path, contents: Data(data)))
        #expect(symlink(path, folder.file("link.img")) == 0)

        let source = try FileEndpoint.open(path: path, forWriting: false, createWithSize: nil)
        for other in [path, folder.file("link.img")] {
            let message = await endpointErrorMessage {
                _ = try FileEndpoint.open(path: other, forWriting: true, createWithSize: 1 << 20)
            }
            #expect(message?.contains("source") == true, "\(message ?? "")")
        }
        #expect(Array(try Data(contentsOf: URL(fileURLWithPath: path))) == data)
        await source.close()
        let destination = try FileEndpoint.open(path: path, forWriting: true, createWithSize: 1 << 20)
        #expect(destination.startsZeroed)
        await destination.close()
    }

    @Test func manyConnectionsAtOnce() async throws {
        let folder = try TemporaryDirectory(prefix: "nbdtop-file")
        defer { folder.remove() }
        let chunk = 256 << 10
        let count = 32
        let endpoint = try FileEndpoint.open(path: folder.file("multi.img"), forWriting: true,
                                             createWithSize: UInt64(chunk * count))
        var connections: [EndpointTestConnection] = []
        for _ in 0..<4 { connections.append(try await EndpointTestConnection.connect(endpoint)) }
        let lanes = connections
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<count {
                group.addTask {
                    let offset = UInt64(index * chunk)
                    try await lanes[index % lanes.count].write(TestBytes.make(offset: offset, count: chunk), at: offset)
                }
            }
            try await group.waitForAll()
        }
        try await lanes[0].flush()
        for lane in lanes { try await lane.close() }
        await endpoint.close()
        let written = try Data(contentsOf: URL(fileURLWithPath: folder.file("multi.img")))
        #expect(Array(written) == TestBytes.make(offset: 0, count: chunk * count))
    }

    @Test func errorsNameThePath() async throws {
        let folder = try TemporaryDirectory(prefix: "nbdtop-file")
        defer { folder.remove() }
        let missing = folder.file("missing.img")
        let openMissing = await endpointErrorMessage {
            _ = try FileEndpoint.open(path: missing, forWriting: false, createWithSize: nil)
        }
        #expect(openMissing?.contains(missing) == true)
        #expect(openMissing?.contains("No such file or directory") == true, "\(openMissing ?? "")")

        let openFolder = await endpointErrorMessage {
            _ = try FileEndpoint.open(path: folder.path, forWriting: false, createWithSize: nil)
        }
        #expect(openFolder?.contains(folder.path) == true)
        #expect(openFolder?.contains("directory") == true, "\(openFolder ?? "")")

        let notWritable = folder.file("no/such/folder/out.img")
        let create = await endpointErrorMessage {
            _ = try FileEndpoint.open(path: notWritable, forWriting: true, createWithSize: 1 << 20)
        }
        #expect(create?.contains(notWritable) == true, "\(create ?? "")")

        let path = folder.file("small.img")
        #expect(FileManager.default.createFile(atPath: path, contents: Data(TestBytes.make(offset: 0, count: 1 << 20))))
        let endpoint = try FileEndpoint.open(path: path, forWriting: false, createWithSize: nil)
        let connection = try await EndpointTestConnection.connect(endpoint)

        let beyond = await endpointErrorMessage { _ = try await connection.read(offset: 1 << 20, length: 10) }
        #expect(beyond?.contains(path) == true)
        #expect(beyond?.contains("1048576") == true, "\(beyond ?? "")")

        let readOnly = await endpointErrorMessage { try await connection.write([1, 2, 3], at: 0) }
        #expect(readOnly?.contains(path) == true, "\(readOnly ?? "")")

        // The file shrinks under the copy: the read that meets the new end names where.
        #expect(truncate(path, 4096) == 0)
        let short = await endpointErrorMessage { _ = try await connection.read(offset: 0, length: 65536) }
        #expect(short?.contains(path) == true)
        #expect(short?.contains("offset 4096") == true, "\(short ?? "")")

        // After close, requests fail instead of touching a reused descriptor.
        await endpoint.close()
        let closed = await endpointErrorMessage { _ = try await connection.read(offset: 0, length: 10) }
        #expect(closed?.contains(path) == true, "\(closed ?? "")")
        await #expect(throws: EndpointError.self) { _ = try await endpoint.connect(on: connection.eventLoop) }
    }

    @Test func characterDeviceIsRefused() async throws {
        let message = await endpointErrorMessage {
            _ = try FileEndpoint.open(path: "/dev/null", forWriting: true, createWithSize: 1 << 20)
        }
        #expect(message?.contains("/dev/null") == true)
        #expect(message?.contains("null:") == true, "\(message ?? "")")
    }

    @Test func closeWaitsForRequestsAndAbortFailsThem() async throws {
        let folder = try TemporaryDirectory(prefix: "nbdtop-file")
        defer { folder.remove() }
        let endpoint = try FileEndpoint.open(path: folder.file("close.img"), forWriting: true, createWithSize: 32 << 20)
        let connection = try await EndpointTestConnection.connect(endpoint)

        // Close while writes run: they finish first, and later requests fail.
        let results = try await connection.onLoop { connection -> EventLoopFuture<[Bool]> in
            let writes = (0..<8).map { index in
                connection.writeFuture([ByteBuffer(repeating: 0xA5, count: 1 << 20)], at: UInt64(index) << 20)
            }
            let closed = connection.close()
            let late = connection.writeFuture([ByteBuffer(repeating: 1, count: 10)], at: 0)
            return EventLoopFuture.whenAllComplete(writes + [late], on: connection.eventLoop).flatMap { results in
                closed.map { results.map { if case .success = $0 { true } else { false } } }
            }
        }
        #expect(results == Array(repeating: true, count: 8) + [false])

        let second = try await EndpointTestConnection.connect(endpoint)
        let aborted = try await second.onLoop { connection -> EventLoopFuture<Int> in
            let reads = (0..<4).map { connection.readFuture(offset: UInt64($0) << 20, length: 1 << 20) }
            connection.abort()
            return EventLoopFuture.whenAllComplete(reads, on: connection.eventLoop).map { results in
                results.filter { if case .failure = $0 { true } else { false } }.count
            }
        }
        #expect(aborted == 4)
        #expect(try await second.inFlightCount == 0)
        await endpoint.close()
    }
}
