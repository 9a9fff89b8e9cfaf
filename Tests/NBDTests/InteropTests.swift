import NBD
import NBDTestSupport
import NIOCore
import Testing

/// Handshake facts and command round trips against every real server we support.
@Suite struct InteropTests {
    @Test(arguments: Peer.writable)
    func handshakeFacts(peer: Peer) async throws {
        let server = try peer.start()
        defer { server.stop() }
        let connection = try await NBDConnection.connect(to: try NBDURI.parse(server.uri))
        let info = connection.info
        #expect(info.handshake == "newstyle-fixed")
        #expect(info.size == Peer.size)
        #expect(info.structuredReplies == peer.structured)
        #expect(info.canMultiConn == peer.multiConn)
        #expect(info.blockSize == peer.blockSize)
        #expect(!info.isReadOnly)
        #expect(info.canFlush && info.canZero)
        #expect(info.canBlockStatus == peer.structured)
        await connection.disconnect()
    }

    @Test(arguments: Peer.writable)
    func roundTrips(peer: Peer) async throws {
        let server = try peer.start()
        defer { server.stop() }
        let connection = try await NBDConnection.connect(to: try NBDURI.parse(server.uri))
        let chunk = min(UInt32(256 << 10), connection.info.maximumPayload)

        // Many writes and reads in flight at once; replies may come in any order.
        let offsets = (0..<32).map { UInt64($0) * UInt64(chunk) + (1 << 20) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for offset in offsets {
                group.addTask {
                    let data = ByteBuffer(bytes: TestBytes.make(offset: offset, count: Int(chunk)))
                    try await connection.write(data, at: offset)
                }
            }
            try await group.waitForAll()
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for offset in offsets {
                group.addTask {
                    let read = try await connection.read(offset: offset, length: chunk)
                    #expect(Array(read.readableBytesView) == TestBytes.make(offset: offset, count: Int(chunk)), "data at \(offset)")
                }
            }
            try await group.waitForAll()
        }

        // Zeroes replace data.
        let zeroOffset = offsets[3]
        try await connection.writeZeroes(offset: zeroOffset, length: chunk)
        let zeroed = try await connection.read(offset: zeroOffset, length: chunk)
        #expect(zeroed.readableBytesView.allSatisfy { $0 == 0 })
        let neighbour = try await connection.read(offset: offsets[4], length: chunk)
        #expect(Array(neighbour.readableBytesView) == TestBytes.make(offset: offsets[4], count: Int(chunk)))

        if connection.info.canTrim {
            try await connection.trim(offset: offsets[5], length: chunk)
        }
        try await connection.flush()

        if connection.info.canBlockStatus {
            let written = try await connection.blockStatus(offset: offsets[0], length: chunk)
            let first = try #require(written.first)
            #expect(!first.isHole && !first.readsAsZero, "written data reported as \(first)")
            let untouched = try await connection.blockStatus(offset: Peer.size - UInt64(chunk), length: chunk)
            #expect(try #require(untouched.first).readsAsZero)
            #expect(untouched.reduce(0) { $0 + UInt64($1.length) } >= 1)
        }
        await connection.disconnect()
    }

    @Test func readOnlyPatternServer() async throws {
        let server = try ServerProcess.nbdkit(["pattern", "64M"], options: ["-r"])
        defer { server.stop() }
        let connection = try await NBDConnection.connect(to: try NBDURI.parse(server.uri))
        #expect(connection.info.isReadOnly)
        for offset: UInt64 in [0, 4096 + 3, (64 << 20) - 1000] {
            let data = try await connection.read(offset: offset, length: 1000)
            #expect(Array(data.readableBytesView) == TestBytes.pattern(offset: offset, count: 1000))
        }
        let big = try await connection.read(offset: 8 << 20, length: 4 << 20)
        #expect(Array(big.readableBytesView) == TestBytes.pattern(offset: 8 << 20, count: 4 << 20))
        await #expect(throws: NBDError.self) {
            try await connection.write(ByteBuffer(bytes: [1, 2, 3]), at: 0)
        }
        await connection.disconnect()
    }

    @Test func dataPluginServesItsBytes() async throws {
        let server = try ServerProcess.nbdkit(["data", "1 2 3 @4096 4 5", "size=1M"])
        defer { server.stop() }
        let connection = try await NBDConnection.connect(to: try NBDURI.parse(server.uri))
        #expect(connection.info.size == 1 << 20)
        let head = try await connection.read(offset: 0, length: 8)
        #expect(Array(head.readableBytesView) == [1, 2, 3, 0, 0, 0, 0, 0])
        let later = try await connection.read(offset: 4094, length: 4)
        #expect(Array(later.readableBytesView) == [0, 0, 4, 5])
        await connection.disconnect()
    }

    @Test func sparseRandomChecksWrites() async throws {
        let server = try ServerProcess.nbdkit(["sparse-random", "64M", "seed=7", "percent=50", "runlength=65536"])
        defer { server.stop() }
        let connection = try await NBDConnection.connect(to: try NBDURI.parse(server.uri))
        let original = try await connection.read(offset: 1 << 20, length: 1 << 20)
        try await connection.write(original, at: 1 << 20)
        var changed = original
        changed.setInteger(~original.getInteger(at: 100, as: UInt8.self)!, at: 100)
        await #expect {
            try await connection.write(changed, at: 1 << 20)
        } throws: { error in
            guard case NBDError.serverError(.write, _, _, let errno, _) = error else { return false }
            return errno == .eio
        }
        await connection.disconnect()
    }

    @Test func requestsTheServerForbidsAreRefusedBeforeSending() async throws {
        let server = try ServerProcess.nbdkit(["memory", "1M", "blocksize-minimum=512", "blocksize-maximum=65536"],
                                              filters: ["blocksize-policy"])
        defer { server.stop() }
        let connection = try await NBDConnection.connect(to: try NBDURI.parse(server.uri))
        for request in [NBDRequest.read(offset: 100, length: 512), .read(offset: 0, length: 128 << 10),
                        .read(offset: 1 << 20, length: 512), .trim(offset: 100, length: 512)] {
            await #expect(throws: NBDError.self, "\(request.type) at \(request.offset) length \(request.length)") {
                _ = try await connection.perform(request)
            }
        }
        // The connection is still good afterwards.
        let data = try await connection.read(offset: 0, length: 512)
        #expect(data.readableBytes == 512)
        await connection.disconnect()
    }
}
