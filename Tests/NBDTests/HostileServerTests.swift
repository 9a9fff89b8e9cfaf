import Foundation
import NBD
import NBDTestSupport
import NIOCore
import Testing

/// What real servers will not do: malformed or hostile replies from `ScriptedServer`.
///
/// Each must end in a typed `NBDError` that names the problem: no crash, no hang, no huge
/// allocation, and nothing left waiting on the connection.
@Suite(.timeLimit(.minutes(2)))
struct HostileServerTests {
    // MARK: 0. The fake server itself, answering correctly

    @Test func scriptedServerAnswersCorrectly() async throws {
        let server = try ScriptedServer { request in
            switch request.command {
            case .read:
                let half = request.length / 2
                // Second half first, as a data chunk; first half a hole.
                return [.send(NBDWire.dataChunk(cookie: request.cookie, offset: request.offset + UInt64(half),
                                                data: NBDWire.bytes(Int(request.length - half), 7))),
                        .pause(milliseconds: 20),
                        .send(NBDWire.holeChunk(cookie: request.cookie, offset: request.offset, length: half, done: true))]
            case .blockStatus:
                return [.send(NBDWire.blockStatusChunk(cookie: request.cookie, contextID: 99, extents: [(1, 0)], done: false)
                              + NBDWire.blockStatusChunk(cookie: request.cookie, extents: [(4096, 3), (8192, 0)]))]
            default:
                return [.send(NBDWire.simpleReply(cookie: request.cookie))]
            }
        }
        defer { server.stop() }
        let connection = try await Hostile.connect(server)
        #expect(connection.info.size == 1 << 20)
        #expect(connection.info.structuredReplies)
        #expect(connection.info.metaContexts == [NBDMetaContext.baseAllocation: 1])
        #expect(connection.info.flags == [.hasFlags, .sendFlush, .sendWriteZeroes, .sendTrim, .canMultiConn])
        try await Hostile.bounded(connection) {
            let data = try await connection.read(offset: 4096, length: 1024)
            #expect(Array(buffer: data) == [UInt8](repeating: 0, count: 512) + [UInt8](repeating: 7, count: 512))
            let extents = try await connection.blockStatus(offset: 0, length: 12288)
            #expect(extents == [NBDExtent(length: 4096, flags: 3), NBDExtent(length: 8192, flags: 0)])
            try await connection.write(ByteBuffer(bytes: [1, 2, 3]), at: 10)
            try await connection.writeZeroes(offset: 0, length: 4096)
            try await connection.flush()
        }
        await connection.disconnect()
        #expect(server.waitUntilFinished())
        #expect(server.requests.map(\.command) == [.read, .blockStatus, .write, .writeZeroes, .flush])
        #expect(server.requests[2].payload == [1, 2, 3])
        #expect(server.options == [NBDOption.structuredReply.rawValue, NBDOption.setMetaContext.rawValue, NBDOption.go.rawValue])
        #expect(server.failure == nil)
    }

    @Test(arguments: [true, false])
    func scriptedServerListsMetaContexts(structuredReplies: Bool) async throws {
        var configuration = ScriptedServer.Configuration()
        configuration.structuredReplies = structuredReplies
        configuration.exportSize = 12345
        let server = try ScriptedServer(configuration)
        defer { server.stop() }
        var options = Hostile.options(timeout: .seconds(60))
        options.listMetaContexts = true
        let connection = try await NBDConnection.connect(to: NBDURI.parse(server.uri), options: options)
        #expect(connection.info.size == 12345)
        #expect(connection.info.structuredReplies == structuredReplies)
        #expect(connection.info.availableMetaContexts == (structuredReplies ? [NBDMetaContext.baseAllocation] : []))
        #expect(connection.info.canBlockStatus == structuredReplies)
        await connection.disconnect()
        #expect(server.waitUntilFinished())
        #expect(server.requests.isEmpty)
    }

    /// Options the fake server does not know (here NBD_OPT_LIST) get NBD_REP_ERR_UNSUP.
    @Test func scriptedServerRefusesUnknownOptions() async throws {
        let server = try ScriptedServer()
        defer { server.stop() }
        await #expect(throws: NBDError.optionRefused(option: .list, reply: "NBD_REP_ERR_UNSUP", message: "")) {
            _ = try await NBDConnection.listExports(at: NBDURI.parse(server.uri), options: Hostile.options(timeout: .seconds(60)))
        }
        #expect(server.options == [NBDOption.list.rawValue])
    }

    // MARK: 1. Wrong magic

    @Test func replyWithWrongMagic() async throws {
        let server = try ScriptedServer { request in
            [.send(NBDWire.simpleReply(cookie: request.cookie, magic: 0xdead_beef))]
        }
        defer { server.stop() }
        let connection = try await Hostile.connect(server)
        let error = await Hostile.error(of: connection) { try await connection.flush() }
        let message = try #require(error?.violation, "\(String(describing: error))")
        #expect(message.contains("wrong magic 0xdeadbeef"))
        try await Hostile.expectClosed(connection, because: #require(error), server: server)
    }

    @Test func structuredChunkWithWrongMagic() async throws {
        let server = try ScriptedServer { request in
            [.send(NBDWire.chunkHeader(cookie: request.cookie, type: NBDWire.chunkNone, flags: NBDWire.flagDone,
                                       length: 0, magic: NBDMagic.simpleReply ^ 0xFF))]
        }
        defer { server.stop() }
        let connection = try await Hostile.connect(server)
        let error = await Hostile.error(of: connection) { _ = try await connection.read(offset: 0, length: 512) }
        #expect(error?.violation?.contains("wrong magic") == true, "\(String(describing: error))")
    }

    // MARK: 2. READ replies longer than asked

    @Test func dataChunkRunsBeyondTheRequest() async throws {
        let server = try ScriptedServer { request in
            [.send(NBDWire.dataChunk(cookie: request.cookie, offset: request.offset + 256, data: NBDWire.bytes(512), done: true))]
        }
        defer { server.stop() }
        let connection = try await Hostile.connect(server)
        let error = await Hostile.error(of: connection) { _ = try await connection.read(offset: 4096, length: 512) }
        let message = try #require(error?.violation, "\(String(describing: error))")
        #expect(message.contains("512 bytes at offset 4352, outside the 512 bytes asked for at 4096"))
    }

    @Test func dataChunkStartsBeforeTheRequest() async throws {
        let server = try ScriptedServer { request in
            [.send(NBDWire.dataChunk(cookie: request.cookie, offset: request.offset - 1, data: NBDWire.bytes(16), done: true))]
        }
        defer { server.stop() }
        let connection = try await Hostile.connect(server)
        let error = await Hostile.error(of: connection) { _ = try await connection.read(offset: 4096, length: 512) }
        #expect(error?.violation?.contains("outside the 512 bytes asked for at 4096") == true, "\(String(describing: error))")
    }

    @Test func dataChunkLongerThanTheRead() async throws {
        let server = try ScriptedServer { request in
            [.send(NBDWire.dataChunk(cookie: request.cookie, offset: request.offset, data: NBDWire.bytes(1024), done: true))]
        }
        defer { server.stop() }
        let connection = try await Hostile.connect(server)
        let error = await Hostile.error(of: connection) { _ = try await connection.read(offset: 4096, length: 512) }
        let message = try #require(error?.violation, "\(String(describing: error))")
        #expect(message.contains("data chunk longer than the READ asked for"))
        #expect(message.contains("length 1032"))
    }

    /// A data chunk announcing 4 GiB: refused from its header, without waiting for the bytes.
    @Test func dataChunkAnnouncingFourGiB() async throws {
        let server = try ScriptedServer { request in
            [.send(NBDWire.chunkHeader(cookie: request.cookie, type: NBDWire.chunkOffsetData, flags: NBDWire.flagDone,
                                       length: 0xFFFF_FFFF) + NBDWire.be(request.offset))]
        }
        defer { server.stop() }
        let connection = try await Hostile.connect(server)
        let error = await Hostile.error(of: connection) { _ = try await connection.read(offset: 0, length: 512) }
        #expect(error?.violation?.contains("data chunk longer than the READ asked for") == true, "\(String(describing: error))")
    }

    @Test func overlappingDataChunksCoverMoreThanAsked() async throws {
        let server = try ScriptedServer { request in
            [.send(NBDWire.dataChunk(cookie: request.cookie, offset: request.offset, data: NBDWire.bytes(512))
                   + NBDWire.dataChunk(cookie: request.cookie, offset: request.offset, data: NBDWire.bytes(512))
                   + NBDWire.doneChunk(cookie: request.cookie))]
        }
        defer { server.stop() }
        let connection = try await Hostile.connect(server)
        let error = await Hostile.error(of: connection) { _ = try await connection.read(offset: 0, length: 512) }
        #expect(error?.violation?.contains("covers 1024 bytes, more than the 512 asked for") == true, "\(String(describing: error))")
    }

    @Test func holeOutsideTheRequest() async throws {
        let server = try ScriptedServer { request in
            [.send(NBDWire.holeChunk(cookie: request.cookie, offset: 0, length: 4096, done: true))]
        }
        defer { server.stop() }
        let connection = try await Hostile.connect(server)
        let error = await Hostile.error(of: connection) { _ = try await connection.read(offset: 4096, length: 512) }
        #expect(error?.violation?.contains("hole of 4096 bytes at 0, outside the 512 bytes asked for at 4096") == true,
                "\(String(describing: error))")
    }

    /// A simple READ reply with more data than asked: the extra bytes are taken as the next
    /// reply header, which has a wrong magic.
    @Test func simpleReadReplyWithTooMuchData() async throws {
        let server = try ScriptedServer(Hostile.noStructuredReplies) { request in
            [.send(NBDWire.simpleReply(cookie: request.cookie, data: NBDWire.bytes(Int(request.length) + 64, 0x5A)))]
        }
        defer { server.stop() }
        let connection = try await Hostile.connect(server)
        #expect(connection.info.structuredReplies == false)
        let error = await Hostile.error(of: connection) {
            // The read itself may complete before the extra bytes are decoded; the
            // connection must end with the violation either way.
            _ = try await connection.read(offset: 0, length: 512)
            try await connection.closeFuture.get()
            let reason = try await connection.eventLoop.submit { connection.closeReason }.get()
            throw try #require(reason)
        }
        #expect(error?.violation?.contains("wrong magic 0x5a5a5a5a") == true, "\(String(describing: error))")
    }

    // MARK: 3. Unknown cookies

    @Test func simpleReplyForUnknownCookie() async throws {
        let server = try ScriptedServer { request in
            [.send(NBDWire.simpleReply(cookie: request.cookie &+ 1000))]
        }
        defer { server.stop() }
        let connection = try await Hostile.connect(server)
        let error = await Hostile.error(of: connection) { try await connection.flush() }
        let message = try #require(error?.violation, "\(String(describing: error))")
        #expect(message.contains("simple reply for unknown cookie"))
        try await Hostile.expectClosed(connection, because: #require(error), server: server)
    }

    @Test func structuredChunkForUnknownCookie() async throws {
        let server = try ScriptedServer { request in
            [.send(NBDWire.dataChunk(cookie: 0xFFFF_FFFF_FFFF, offset: request.offset, data: NBDWire.bytes(512), done: true))]
        }
        defer { server.stop() }
        let connection = try await Hostile.connect(server)
        let error = await Hostile.error(of: connection) { _ = try await connection.read(offset: 0, length: 512) }
        #expect(error?.violation?.contains("structured reply chunk for unknown cookie 281474976710655") == true,
                "\(String(describing: error))")
    }

    /// A second reply to a request that is already complete.
    @Test func replyRepeatedForAFinishedRequest() async throws {
        let server = try ScriptedServer { request in
            [.send(NBDWire.simpleReply(cookie: request.cookie)), .pause(milliseconds: 50),
             .send(NBDWire.simpleReply(cookie: request.cookie))]
        }
        defer { server.stop() }
        let connection = try await Hostile.connect(server)
        try await Hostile.bounded(connection) {
            try await connection.flush()
            try await connection.closeFuture.get()
        }
        let reason = try await connection.eventLoop.submit { connection.closeReason }.get()
        #expect(reason?.violation?.contains("unknown cookie") == true, "\(String(describing: reason))")
    }

    // MARK: 4. Unknown and misplaced chunk types

    @Test(arguments: [UInt16(42), 3, 0x7FFF])
    func unknownChunkType(type: UInt16) async throws {
        let server = try ScriptedServer { request in
            [.send(NBDWire.chunk(cookie: request.cookie, type: type, flags: NBDWire.flagDone, payload: NBDWire.bytes(8)))]
        }
        defer { server.stop() }
        let connection = try await Hostile.connect(server)
        let error = await Hostile.error(of: connection) { _ = try await connection.read(offset: 0, length: 512) }
        let message = try #require(error?.violation, "\(String(describing: error))")
        #expect(message.contains("unknown chunk type (chunk type \(type),"))
    }

    @Test func dataChunkAnsweringAFlush() async throws {
        let server = try ScriptedServer { request in
            [.send(NBDWire.dataChunk(cookie: request.cookie, offset: 0, data: NBDWire.bytes(16), done: true))]
        }
        defer { server.stop() }
        let connection = try await Hostile.connect(server)
        let error = await Hostile.error(of: connection) { try await connection.flush() }
        #expect(error?.violation?.contains("data chunk for a command that is not READ") == true, "\(String(describing: error))")
    }

    @Test func blockStatusChunkAnsweringARead() async throws {
        let server = try ScriptedServer { request in
            [.send(NBDWire.blockStatusChunk(cookie: request.cookie, extents: [(512, 0)]))]
        }
        defer { server.stop() }
        let connection = try await Hostile.connect(server)
        let error = await Hostile.error(of: connection) { _ = try await connection.read(offset: 0, length: 512) }
        #expect(error?.violation?.contains("block status chunk for a command that is not BLOCK_STATUS") == true,
                "\(String(describing: error))")
    }

    @Test func malformedBlockStatusChunks() async throws {
        let cases: [(reply: @Sendable (UInt64) -> [UInt8], expected: String)] = [
            ({ NBDWire.blockStatusChunk(cookie: $0, extents: [(0, 0)]) }, "extent of length 0"),
            ({ NBDWire.chunk(cookie: $0, type: NBDWire.chunkBlockStatus, flags: NBDWire.flagDone, payload: NBDWire.bytes(10)) },
             "block status chunk of malformed length"),
            ({ NBDWire.chunkHeader(cookie: $0, type: NBDWire.chunkBlockStatus, flags: NBDWire.flagDone, length: 0xFFFF_FFFC) },
             "block status chunk too large"),
        ]
        for (reply, expected) in cases {
            let server = try ScriptedServer { request in [.send(reply(request.cookie))] }
            defer { server.stop() }
            let connection = try await Hostile.connect(server)
            let error = await Hostile.error(of: connection) { _ = try await connection.blockStatus(offset: 0, length: 4096) }
            #expect(error?.violation?.contains(expected) == true, "\(expected): \(String(describing: error))")
        }
    }

    @Test func blockStatusWithoutBaseAllocationExtents() async throws {
        let server = try ScriptedServer { request in
            [.send(NBDWire.blockStatusChunk(cookie: request.cookie, contextID: 99, extents: [(4096, 0)]))]
        }
        defer { server.stop() }
        let connection = try await Hostile.connect(server)
        let error = await Hostile.error(of: connection) { _ = try await connection.blockStatus(offset: 0, length: 4096) }
        #expect(error?.violation?.contains("no base:allocation extents") == true, "\(String(describing: error))")
    }

    @Test func structuredChunkWithoutNegotiation() async throws {
        let server = try ScriptedServer(Hostile.noStructuredReplies) { request in
            [.send(NBDWire.dataChunk(cookie: request.cookie, offset: request.offset, data: NBDWire.bytes(Int(request.length)), done: true))]
        }
        defer { server.stop() }
        let connection = try await Hostile.connect(server)
        let error = await Hostile.error(of: connection) { _ = try await connection.read(offset: 0, length: 512) }
        #expect(error?.violation?.contains("structured replies were not negotiated") == true, "\(String(describing: error))")
    }

    @Test func noneChunkThatIsNotTheEnd() async throws {
        let server = try ScriptedServer { request in
            [.send(NBDWire.chunk(cookie: request.cookie, type: NBDWire.chunkNone, flags: 0))]
        }
        defer { server.stop() }
        let connection = try await Hostile.connect(server)
        let error = await Hostile.error(of: connection) { try await connection.flush() }
        #expect(error?.violation?.contains("NBD_REPLY_TYPE_NONE without the DONE flag") == true, "\(String(describing: error))")
    }

    // MARK: 5. Error chunks with hostile lengths

    /// An error chunk announcing a 4 GiB message is refused from its header: the server
    /// sends only the header and keeps the connection open, so waiting for (or allocating)
    /// the announced bytes would hang here.
    @Test func errorChunkAnnouncingFourGiB() async throws {
        let server = try ScriptedServer { request in
            [.send(NBDWire.chunkHeader(cookie: request.cookie, type: NBDWire.chunkError, flags: NBDWire.flagDone,
                                       length: 0xFFFF_FFFF) + NBDWire.be(UInt32(5)) + NBDWire.be(UInt16(0xFFFF)))]
        }
        defer { server.stop() }
        let connection = try await Hostile.connect(server)
        let error = await Hostile.error(of: connection) { _ = try await connection.read(offset: 0, length: 512) }
        let message = try #require(error?.violation, "\(String(describing: error))")
        #expect(message.contains("error chunk too large"))
        #expect(message.contains("length 4294967295"))
    }

    @Test(arguments: [UInt16(4000), 0xFFFF, 6])
    func errorMessageLongerThanTheChunk(messageLength: UInt16) async throws {
        let server = try ScriptedServer { request in
            [.send(NBDWire.errorChunk(cookie: request.cookie, errno: NBDErrno.eio.rawValue, message: "short",
                                      messageLength: messageLength))]
        }
        defer { server.stop() }
        let connection = try await Hostile.connect(server)
        let error = await Hostile.error(of: connection) { _ = try await connection.read(offset: 0, length: 512) }
        #expect(error?.violation?.contains("error chunk message of \(messageLength) bytes overruns the chunk") == true,
                "\(String(describing: error))")
    }

    @Test func errorChunkTooShort() async throws {
        let server = try ScriptedServer { request in
            [.send(NBDWire.chunk(cookie: request.cookie, type: NBDWire.chunkError, flags: NBDWire.flagDone,
                                 payload: NBDWire.be(UInt32(5))))]
        }
        defer { server.stop() }
        let connection = try await Hostile.connect(server)
        let error = await Hostile.error(of: connection) { try await connection.flush() }
        #expect(error?.violation?.contains("error chunk too short") == true, "\(String(describing: error))")
    }

    @Test func errorChunkWithErrorCodeZero() async throws {
        let server = try ScriptedServer { request in
            [.send(NBDWire.errorChunk(cookie: request.cookie, errno: 0, message: "all is well"))]
        }
        defer { server.stop() }
        let connection = try await Hostile.connect(server)
        let error = await Hostile.error(of: connection) { try await connection.flush() }
        #expect(error?.violation?.contains("error chunk with error code 0") == true, "\(String(describing: error))")
    }

    @Test func errorChunkWithTrailingBytes() async throws {
        let server = try ScriptedServer { request in
            [.send(NBDWire.errorChunk(cookie: request.cookie, errno: 5, message: "abcdef", messageLength: 3))]
        }
        defer { server.stop() }
        let connection = try await Hostile.connect(server)
        let error = await Hostile.error(of: connection) { try await connection.flush() }
        #expect(error?.violation?.contains("error chunk longer than its message") == true, "\(String(describing: error))")
    }

    // MARK: 6. Connection closed mid-reply

    @Test func closedInTheMiddleOfASimpleReadReply() async throws {
        let server = try ScriptedServer(Hostile.noStructuredReplies) { request in
            [.send(NBDWire.simpleReply(cookie: request.cookie) + NBDWire.bytes(Int(request.length) / 2)),
             .pause(milliseconds: 100), .close]
        }
        defer { server.stop() }
        let connection = try await Hostile.connect(server)
        let error = await Hostile.error(of: connection) { _ = try await connection.read(offset: 0, length: 1024) }
        let message = try #require(error?.closed, "\(String(describing: error))")
        #expect(message.contains("server closed the connection in the middle of a reply"))
        try await Hostile.expectClosed(connection, because: #require(error), server: server)
    }

    @Test func closedInTheMiddleOfAStructuredChunk() async throws {
        let server = try ScriptedServer { request in
            [.send(NBDWire.dataChunk(cookie: request.cookie, offset: request.offset, data: NBDWire.bytes(Int(request.length)),
                                     done: true).dropLast(300).map { $0 }),
             .pause(milliseconds: 100), .reset]
        }
        defer { server.stop() }
        let connection = try await Hostile.connect(server)
        let error = await Hostile.error(of: connection) { _ = try await connection.read(offset: 0, length: 1024) }
        #expect(error?.closed?.contains("in the middle of a reply") == true, "\(String(describing: error))")
    }

    @Test func closedWithRequestsInFlight() async throws {
        let server = try ScriptedServer { request in
            request.index < 2 ? [] : [.close]
        }
        defer { server.stop() }
        let connection = try await Hostile.connect(server)
        let errors = await Hostile.concurrently(connection, [
            { _ = try await connection.read(offset: 0, length: 512) },
            { try await connection.flush() },
            { try await connection.trim(offset: 0, length: 4096) },
        ])
        for error in errors {
            #expect(error?.closed == "server closed the connection", "\(String(describing: error))")
        }
    }

    // MARK: 7. Hostile handshakes

    @Test func greetingWithWrongMagic() async throws {
        let server = try ScriptedServer(handshake: { connection in
            try connection.send(Array("NOTNBDMAGIC!".utf8) + NBDWire.be(UInt32(0)) + NBDWire.be(UInt16(3)))
            return .hang
        })
        defer { server.stop() }
        let error = await Hostile.connectError(server)
        let message = try #require(error?.violation, "\(String(describing: error))")
        #expect(message.contains("not an NBD server (greeting starts with 0x4e4f544e42444d41)"))
    }

    @Test func oldstyleGreeting() async throws {
        let server = try ScriptedServer(handshake: { connection in
            try connection.send(NBDWire.be(NBDMagic.initPassword) + NBDWire.be(NBDMagic.oldstyle) + NBDWire.be(UInt64(1 << 20))
                                + NBDWire.be(UInt32(1)) + [UInt8](repeating: 0, count: 124))
            return .hang
        })
        defer { server.stop() }
        let error = await Hostile.connectError(server)
        guard case .unsupported(let message) = error else {
            Issue.record("expected .unsupported, got \(String(describing: error))")
            return
        }
        #expect(message.contains("old-style handshake"))
    }

    @Test func unknownHandshakeStyle() async throws {
        let server = try ScriptedServer(handshake: { connection in
            try connection.send(NBDWire.be(NBDMagic.initPassword) + NBDWire.be(UInt64(0x1234_5678)) + NBDWire.be(UInt16(3)))
            return .hang
        })
        defer { server.stop() }
        let error = await Hostile.connectError(server)
        #expect(error?.violation?.contains("unknown handshake style 0x12345678") == true, "\(String(describing: error))")
    }

    @Test(arguments: [UInt32(0xFFFF_FFFF), 65537])
    func optionReplyWithHugeLength(length: UInt32) async throws {
        let server = try ScriptedServer(handshake: { connection in
            try connection.sendGreeting()
            _ = try connection.receiveClientFlags()
            let (option, _) = try connection.receiveOption()
            try connection.send(NBDWire.optionReply(option: option, type: NBDOptionReplyType.ack, length: length))
            return .hang
        })
        defer { server.stop() }
        let error = await Hostile.connectError(server)
        let message = try #require(error?.violation, "\(String(describing: error))")
        #expect(message.contains("reply to NBD_OPT_STRUCTURED_REPLY is \(length) bytes long, more than 65536"))
    }

    @Test func optionReplyWithWrongMagic() async throws {
        let server = try ScriptedServer(handshake: { connection in
            try connection.sendGreeting()
            _ = try connection.receiveClientFlags()
            let (option, _) = try connection.receiveOption()
            var reply = NBDWire.optionReply(option: option, type: NBDOptionReplyType.ack)
            reply[0] ^= 0xFF
            try connection.send(reply)
            return .hang
        })
        defer { server.stop() }
        let error = await Hostile.connectError(server)
        #expect(error?.violation?.contains("option reply has wrong magic") == true, "\(String(describing: error))")
    }

    @Test func optionReplyForAnotherOption() async throws {
        let server = try ScriptedServer(handshake: { connection in
            try connection.sendGreeting()
            _ = try connection.receiveClientFlags()
            _ = try connection.receiveOption()
            try connection.sendOptionReply(option: NBDOption.go.rawValue, type: NBDOptionReplyType.ack)
            return .hang
        })
        defer { server.stop() }
        let error = await Hostile.connectError(server)
        #expect(error?.violation?.contains("reply to NBD_OPT_STRUCTURED_REPLY names option 7") == true,
                "\(String(describing: error))")
    }

    @Test func goFinishedWithoutExportInfo() async throws {
        let server = try ScriptedServer(handshake: { connection in
            try connection.sendGreeting()
            _ = try connection.receiveClientFlags()
            while true {
                let (option, _) = try connection.receiveOption()
                try connection.sendOptionReply(option: option, type: NBDOptionReplyType.ack)
                if option == NBDOption.go.rawValue { return .hang }
            }
        })
        defer { server.stop() }
        let error = await Hostile.connectError(server)
        #expect(error?.violation?.contains("without telling the export size") == true, "\(String(describing: error))")
    }

    @Test func exportInfoOfWrongLength() async throws {
        let server = try ScriptedServer(handshake: { connection in
            try connection.sendGreeting()
            _ = try connection.receiveClientFlags()
            while true {
                let (option, _) = try connection.receiveOption()
                guard option == NBDOption.go.rawValue else {
                    try connection.sendOptionReply(option: option, type: NBDWire.repErrUnsup)
                    continue
                }
                try connection.sendOptionReply(option: option, type: NBDOptionReplyType.info,
                                               data: NBDWire.be(UInt16(0)) + NBDWire.be(UInt64(1 << 20)))
                return .hang
            }
        })
        defer { server.stop() }
        let error = await Hostile.connectError(server)
        #expect(error?.violation?.contains("NBD_INFO_EXPORT of wrong length") == true, "\(String(describing: error))")
    }

    @Test func tooManyMetaContexts() async throws {
        let server = try ScriptedServer(handshake: { connection in
            try connection.sendGreeting()
            _ = try connection.receiveClientFlags()
            while true {
                let (option, _) = try connection.receiveOption()
                guard option == NBDOption.setMetaContext.rawValue else {
                    try connection.sendOptionReply(option: option, type: NBDOptionReplyType.ack)
                    continue
                }
                var flood: [UInt8] = []
                for id in 0..<UInt32(5000) {
                    flood += NBDWire.optionReply(option: option, type: NBDOptionReplyType.metaContext,
                                                 data: NBDWire.be(id) + Array("base:allocation".utf8))
                }
                try connection.send(flood)
                return .hang
            }
        })
        defer { server.stop() }
        // A generous handshake timeout: this test is about the limit, not about speed on a busy machine.
        let error = await Hostile.connectError(server, timeout: .seconds(120))
        #expect(error?.violation?.contains("too many meta contexts") == true, "\(String(describing: error))")
    }

    @Test func bytesSentAfterTheHandshake() async throws {
        let server = try ScriptedServer(handshake: { connection in
            try connection.sendGreeting()
            _ = try connection.receiveClientFlags()
            while true {
                let (option, _) = try connection.receiveOption()
                guard option == NBDOption.go.rawValue else {
                    try connection.sendOptionReply(option: option, type: NBDWire.repErrUnsup)
                    continue
                }
                // The export, the ACK and, in the same write, a reply nobody asked for.
                try connection.send(
                    NBDWire.optionReply(option: option, type: NBDOptionReplyType.info,
                                        data: NBDWire.be(UInt16(0)) + NBDWire.be(UInt64(1 << 20)) + NBDWire.be(UInt16(1)))
                    + NBDWire.optionReply(option: option, type: NBDOptionReplyType.ack)
                    + NBDWire.simpleReply(cookie: 1))
                return .hang
            }
        })
        defer { server.stop() }
        let error = await Hostile.connectError(server)
        #expect(error?.violation?.contains("unexpected bytes after the handshake") == true, "\(String(describing: error))")
    }

    @Test func closedDuringTheHandshake() async throws {
        let server = try ScriptedServer(handshake: { connection in
            try connection.sendGreeting()
            _ = try connection.receiveClientFlags()
            _ = try connection.receiveOption()
            try connection.send(Array(NBDWire.optionReply(option: 8, type: NBDOptionReplyType.ack).prefix(10)))
            return .close
        })
        defer { server.stop() }
        let error = await Hostile.connectError(server)
        #expect(error?.closed?.contains("during the handshake") == true, "\(String(describing: error))")
    }

    // MARK: 8. Handshake timeouts

    @Test func serverThatNeverAnswersTheHandshake() async throws {
        let server = try ScriptedServer(handshake: { _ in .hang })
        defer { server.stop() }
        let started = ContinuousClock.now
        let error = await Hostile.connectError(server, timeout: .milliseconds(500))
        let elapsed = ContinuousClock.now - started
        guard case .timedOut(let message) = error else {
            Issue.record("expected .timedOut, got \(String(describing: error))")
            return
        }
        #expect(message.contains("handshake"))
        #expect(elapsed >= .milliseconds(400))
        // The client gave up and closed: the server sees it go.
        #expect(server.waitUntilFinished())
    }

    @Test func serverThatStallsInTheMiddleOfTheOptions() async throws {
        let server = try ScriptedServer(handshake: { connection in
            try connection.sendGreeting()
            _ = try connection.receiveClientFlags()
            _ = try connection.receiveOption()
            try connection.send(Array(NBDWire.optionReply(option: 8, type: NBDOptionReplyType.ack).prefix(12)))
            return .hang
        })
        defer { server.stop() }
        let error = await Hostile.connectError(server, timeout: .milliseconds(500))
        guard case .timedOut = error else {
            Issue.record("expected .timedOut, got \(String(describing: error))")
            return
        }
    }

    // MARK: 9. READ replies that cover too little

    @Test func dataChunkCoveringPartOfTheReadWithDone() async throws {
        let server = try ScriptedServer { request in
            [.send(NBDWire.dataChunk(cookie: request.cookie, offset: request.offset, data: NBDWire.bytes(256), done: true))]
        }
        defer { server.stop() }
        let connection = try await Hostile.connect(server)
        let error = await Hostile.error(of: connection) { _ = try await connection.read(offset: 8192, length: 512) }
        let message = try #require(error?.violation, "\(String(describing: error))")
        #expect(message.contains("READ reply covers 256 of the 512 bytes asked for at 8192"))
        try await Hostile.expectClosed(connection, because: #require(error), server: server)
    }

    @Test func dataAndHoleCoveringPartOfTheReadThenNone() async throws {
        let server = try ScriptedServer { request in
            [.send(NBDWire.dataChunk(cookie: request.cookie, offset: request.offset + 256, data: NBDWire.bytes(128))
                   + NBDWire.holeChunk(cookie: request.cookie, offset: request.offset, length: 128)
                   + NBDWire.doneChunk(cookie: request.cookie))]
        }
        defer { server.stop() }
        let connection = try await Hostile.connect(server)
        let error = await Hostile.error(of: connection) { _ = try await connection.read(offset: 0, length: 512) }
        #expect(error?.violation?.contains("covers 256 of the 512 bytes") == true, "\(String(describing: error))")
    }

    @Test func structuredReadAnsweredWithOnlyDone() async throws {
        let server = try ScriptedServer { request in
            [.send(NBDWire.doneChunk(cookie: request.cookie))]
        }
        defer { server.stop() }
        let connection = try await Hostile.connect(server)
        let error = await Hostile.error(of: connection) { _ = try await connection.read(offset: 0, length: 512) }
        #expect(error?.violation?.contains("covers 0 of the 512 bytes") == true, "\(String(describing: error))")
    }

    // MARK: 10. Server errors (not violations: the connection goes on)

    @Test func errorChunkBecomesServerError() async throws {
        let server = try ScriptedServer { request in
            switch request.index {
            case 0: [.send(NBDWire.errorChunk(cookie: request.cookie, errno: NBDErrno.eio.rawValue, message: "disk on fire"))]
            default: [.send(NBDWire.simpleReply(cookie: request.cookie))]
            }
        }
        defer { server.stop() }
        let connection = try await Hostile.connect(server)
        let error = await Hostile.error(of: connection) { _ = try await connection.read(offset: 4096, length: 512) }
        #expect(error == .serverError(command: .read, offset: 4096, length: 512, errno: .eio, message: "disk on fire"))
        #expect(error.map { "\($0)" }?.contains("EIO") == true)
        // Only that request failed.
        try await Hostile.bounded(connection) { try await connection.flush() }
        await connection.disconnect()
    }

    @Test func errorChunkWithOffset() async throws {
        let server = try ScriptedServer { request in
            guard request.command == .read else { return [.send(NBDWire.simpleReply(cookie: request.cookie))] }
            return [.send(NBDWire.dataChunk(cookie: request.cookie, offset: request.offset, data: NBDWire.bytes(256))
                          + NBDWire.errorChunk(cookie: request.cookie, errno: NBDErrno.eio.rawValue, message: "bad sector",
                                               offset: request.offset + 256, done: false)
                          + NBDWire.doneChunk(cookie: request.cookie))]
        }
        defer { server.stop() }
        let connection = try await Hostile.connect(server)
        let error = await Hostile.error(of: connection) { _ = try await connection.read(offset: 4096, length: 512) }
        #expect(error == .serverError(command: .read, offset: 4352, length: 512, errno: .eio, message: "bad sector"))
        try await Hostile.bounded(connection) { try await connection.flush() }
        await connection.disconnect()
    }

    @Test func simpleErrorReplyBecomesServerError() async throws {
        let server = try ScriptedServer { request in
            switch request.command {
            case .write: [.send(NBDWire.simpleReply(cookie: request.cookie, error: NBDErrno.enospc.rawValue))]
            default: [.send(NBDWire.simpleReply(cookie: request.cookie))]
            }
        }
        defer { server.stop() }
        let connection = try await Hostile.connect(server)
        let error = await Hostile.error(of: connection) {
            try await connection.write(ByteBuffer(bytes: NBDWire.bytes(4096)), at: 8192)
        }
        #expect(error == .serverError(command: .write, offset: 8192, length: 4096, errno: .enospc, message: ""))
        #expect(server.requests.first?.payload == NBDWire.bytes(4096))
        try await Hostile.bounded(connection) { try await connection.flush() }
        await connection.disconnect()
    }

    @Test func simpleErrorReplyWithoutStructuredReplies() async throws {
        let server = try ScriptedServer(Hostile.noStructuredReplies) { request in
            [.send(NBDWire.simpleReply(cookie: request.cookie, error: NBDErrno.eio.rawValue))]
        }
        defer { server.stop() }
        let connection = try await Hostile.connect(server)
        #expect(connection.info.structuredReplies == false)
        #expect(connection.info.metaContexts.isEmpty)
        #expect(!server.options.contains(NBDOption.setMetaContext.rawValue))
        // No READ payload follows a simple error reply.
        let error = await Hostile.error(of: connection) { _ = try await connection.read(offset: 0, length: 512) }
        #expect(error == .serverError(command: .read, offset: 0, length: 512, errno: .eio, message: ""))
        // BLOCK_STATUS was not negotiated: refused without being sent.
        let refused = await Hostile.error(of: connection) { _ = try await connection.blockStatus(offset: 0, length: 512) }
        guard case .invalidRequest = refused else {
            Issue.record("expected .invalidRequest, got \(String(describing: refused))")
            return
        }
        #expect(server.requests.count == 1)
        await connection.disconnect()
    }

    // MARK: Everything in flight fails with the violation

    @Test func violationFailsEveryRequestInFlight() async throws {
        let server = try ScriptedServer { request in
            // Hold the first three requests; answer the fourth with garbage.
            request.index < 3 ? [] : [.send(NBDWire.chunk(cookie: request.cookie, type: 42, flags: NBDWire.flagDone))]
        }
        defer { server.stop() }
        let connection = try await Hostile.connect(server)
        let errors = await Hostile.concurrently(connection, [
            { _ = try await connection.read(offset: 0, length: 512) },
            { try await connection.write(ByteBuffer(bytes: NBDWire.bytes(512)), at: 512) },
            { try await connection.flush() },
            { _ = try await connection.blockStatus(offset: 0, length: 4096) },
        ])
        let first = try #require(errors.first ?? nil)
        #expect(first.violation?.contains("unknown chunk type") == true, "\(first)")
        for error in errors { #expect(error == first) }
        #expect(server.requests.count == 4)
        try await Hostile.expectClosed(connection, because: first, server: server)
    }

    @Test func partialReadFailsEveryRequestInFlight() async throws {
        let server = try ScriptedServer { request in
            request.index < 2 ? [] : [.send(NBDWire.holeChunk(cookie: request.cookie, offset: request.offset, length: 1, done: true))]
        }
        defer { server.stop() }
        let connection = try await Hostile.connect(server)
        let errors = await Hostile.concurrently(connection, [
            { _ = try await connection.read(offset: 0, length: 512) },
            { _ = try await connection.read(offset: 512, length: 512) },
            { _ = try await connection.read(offset: 1024, length: 512) },
        ])
        let first = try #require(errors.first ?? nil)
        #expect(first.violation?.contains("covers 1 of the 512 bytes") == true, "\(first)")
        for error in errors { #expect(error == first) }
        try await Hostile.expectClosed(connection, because: first, server: server)
    }
}

// MARK: - Helpers

private enum Hostile {
    static var noStructuredReplies: ScriptedServer.Configuration {
        var configuration = ScriptedServer.Configuration()
        configuration.structuredReplies = false
        return configuration
    }

    static func options(timeout: TimeAmount) -> NBDConnection.Options {
        var options = NBDConnection.Options()
        options.timeout = timeout
        return options
    }

    static func connect(_ server: ScriptedServer, timeout: TimeAmount = .seconds(60)) async throws -> NBDConnection {
        try await NBDConnection.connect(to: NBDURI.parse(server.uri), options: options(timeout: timeout))
    }

    /// The `NBDError` that connecting throws (the handshake's own timeout bounds it).
    static func connectError(_ server: ScriptedServer, timeout: TimeAmount = .seconds(60),
                             sourceLocation: SourceLocation = #_sourceLocation) async -> NBDError? {
        do {
            let connection = try await connect(server, timeout: timeout)
            Issue.record("connected to a hostile server: \(connection.info)", sourceLocation: sourceLocation)
            await connection.abort()
            return nil
        } catch let error as NBDError {
            return error
        } catch {
            Issue.record("expected an NBDError, got \(type(of: error)): \(error)", sourceLocation: sourceLocation)
            return nil
        }
    }

    /// Runs `body`, aborting `connection` if it has not finished within `seconds`, so that
    /// a hang fails the test (with the watchdog's reason) instead of hanging it.
    static func bounded<T>(_ connection: NBDConnection, seconds: Int = 60, _ body: () async throws -> T) async throws -> T {
        let watchdog = Task {
            try await Task.sleep(for: .seconds(seconds))
            await connection.abort(reason: "test watchdog: no answer within \(seconds) s")
        }
        defer { watchdog.cancel() }
        return try await body()
    }

    /// The `NBDError` that `body` throws; records an issue if it throws nothing or something else.
    static func error(of connection: NBDConnection, sourceLocation: SourceLocation = #_sourceLocation,
                      _ body: () async throws -> Void) async -> NBDError? {
        do {
            try await bounded(connection, body)
            Issue.record("expected an NBDError, but the request succeeded", sourceLocation: sourceLocation)
            return nil
        } catch let error as NBDError {
            return error
        } catch {
            Issue.record("expected an NBDError, got \(type(of: error)): \(error)", sourceLocation: sourceLocation)
            return nil
        }
    }

    /// Runs the requests at once (all are in flight together) and returns each one's error.
    static func concurrently(_ connection: NBDConnection, _ requests: [@Sendable () async throws -> Void],
                             sourceLocation: SourceLocation = #_sourceLocation) async -> [NBDError?] {
        let watchdog = Task {
            try await Task.sleep(for: .seconds(60))
            await connection.abort(reason: "test watchdog: no answer within 60 s")
        }
        defer { watchdog.cancel() }
        return await withTaskGroup(of: (Int, NBDError?).self) { group in
            for (index, request) in requests.enumerated() {
                group.addTask {
                    do {
                        try await request()
                        Issue.record("request \(index) succeeded", sourceLocation: sourceLocation)
                        return (index, nil)
                    } catch let error as NBDError {
                        return (index, error)
                    } catch {
                        Issue.record("request \(index) threw \(error)", sourceLocation: sourceLocation)
                        return (index, nil)
                    }
                }
            }
            var errors = [NBDError?](repeating: nil, count: requests.count)
            for await (index, error) in group { errors[index] = error }
            return errors
        }
    }

    /// After a violation: the connection is closed with `error` as its reason, nothing is
    /// left in flight, new requests fail at once with the same error, and the server sees
    /// the client go.
    static func expectClosed(_ connection: NBDConnection, because error: NBDError, server: ScriptedServer,
                             sourceLocation: SourceLocation = #_sourceLocation) async throws {
        try await bounded(connection) { try await connection.closeFuture.get() }
        let (reason, inFlight) = try await connection.eventLoop.submit {
            (connection.closeReason, connection.inFlightCount)
        }.get()
        #expect(reason == error, sourceLocation: sourceLocation)
        #expect(inFlight == 0, sourceLocation: sourceLocation)
        let sent = server.requests.count
        let later = await self.error(of: connection, sourceLocation: sourceLocation) { try await connection.flush() }
        #expect(later == error, sourceLocation: sourceLocation)
        #expect(server.waitUntilFinished(), "the server still sees the client", sourceLocation: sourceLocation)
        #expect(server.requests.count == sent, sourceLocation: sourceLocation)
        #expect(server.failure == nil, sourceLocation: sourceLocation)
    }
}

private extension NBDError {
    /// The message of a `.protocolViolation`, else nil.
    var violation: String? {
        if case .protocolViolation(let message) = self { return message }
        return nil
    }

    /// The message of a `.connectionClosed`, else nil.
    var closed: String? {
        if case .connectionClosed(let message) = self { return message }
        return nil
    }
}
