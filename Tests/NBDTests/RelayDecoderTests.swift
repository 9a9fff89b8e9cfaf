import NBD
import NIOCore
import Testing

/// `RelayDecoder` against handshakes and transmissions built byte by byte from the
/// protocol, fed whole and one byte at a time.
@Suite struct RelayDecoderTests {
    // MARK: Wire builders

    static func greeting() -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(NBDMagic.initPassword)
        buffer.writeInteger(NBDMagic.optionRequest)
        buffer.writeInteger(UInt16(3))  // fixed newstyle, no zeroes
        return buffer
    }

    static func option(_ code: UInt32, data: [UInt8] = []) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(NBDMagic.optionRequest)
        buffer.writeInteger(code)
        buffer.writeInteger(UInt32(data.count))
        buffer.writeBytes(data)
        return buffer
    }

    static func optionReply(_ code: UInt32, type: UInt32, data: [UInt8] = []) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(NBDMagic.optionReply)
        buffer.writeInteger(code)
        buffer.writeInteger(type)
        buffer.writeInteger(UInt32(data.count))
        buffer.writeBytes(data)
        return buffer
    }

    static func exportInfo(size: UInt64, flags: UInt16) -> ByteBuffer {
        var data = ByteBuffer()
        data.writeInteger(UInt16(0))
        data.writeInteger(size)
        data.writeInteger(flags)
        return optionReply(NBDOption.go.rawValue, type: 3, data: Array(data.readableBytesView))
    }

    static func request(_ type: NBDCommandType, cookie: UInt64, offset: UInt64, length: UInt32, payload: Int = 0) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(NBDMagic.request)
        buffer.writeInteger(UInt16(0))
        buffer.writeInteger(type.rawValue)
        buffer.writeInteger(cookie)
        buffer.writeInteger(offset)
        buffer.writeInteger(length)
        buffer.writeRepeatingByte(0xab, count: payload)
        return buffer
    }

    static func simpleReply(cookie: UInt64, error: UInt32 = 0, payload: Int = 0) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(NBDMagic.simpleReply)
        buffer.writeInteger(error)
        buffer.writeInteger(cookie)
        buffer.writeRepeatingByte(0xcd, count: payload)
        return buffer
    }

    static func chunk(cookie: UInt64, type: UInt16, flags: UInt16, body: ByteBuffer) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(NBDMagic.structuredReply)
        buffer.writeInteger(flags)
        buffer.writeInteger(type)
        buffer.writeInteger(cookie)
        buffer.writeInteger(UInt32(body.readableBytes))
        var body = body
        buffer.writeBuffer(&body)
        return buffer
    }

    static func clientFlags() -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt32(3))
        return buffer
    }

    // MARK: Driving

    /// What came out of a run: the bytes each way, and what was seen.
    struct Outcome {
        var toServer = ByteBuffer()
        var toClient = ByteBuffer()
        var requests: [RelayedRequest] = []
        var replies: [(RelayedRequest, NBDErrno?)] = []
        var answeredByRelay: [UInt32] = []
        var exportSize: UInt64?
        var upstreamTLSAccepted = false
        var upstreamTLSRefusals: [String] = []
        var turnedAway = false

        mutating func take(_ events: [RelayEvent]) {
            for event in events {
                switch event {
                case .toServer(var bytes): toServer.writeBuffer(&bytes)
                case .toClient(var bytes): toClient.writeBuffer(&bytes)
                case .requestSent(let request): requests.append(request)
                case .replyReceived(let request, let error): replies.append((request, error))
                case .optionAnsweredByRelay(let code, _): answeredByRelay.append(code)
                case .transmissionStarted(let size, _): exportSize = size
                case .optionSent: break
                case .upstreamTLSAccepted: upstreamTLSAccepted = true
                case .upstreamTLSRefused(_, let message): upstreamTLSRefusals.append(message)
                case .clientTurnedAway: turnedAway = true
                }
            }
        }
    }

    enum Step {
        case client(ByteBuffer)
        case server(ByteBuffer)
    }

    /// Feeds the steps, whole or split into single bytes.
    static func drive(_ steps: [Step], byteByByte: Bool) throws -> Outcome {
        var decoder = RelayDecoder()
        var outcome = Outcome()
        for step in steps {
            switch step {
            case .client(let bytes):
                for piece in pieces(bytes, byteByByte) { outcome.take(try decoder.clientSent(piece)) }
            case .server(let bytes):
                for piece in pieces(bytes, byteByByte) { outcome.take(try decoder.serverSent(piece)) }
            }
        }
        return outcome
    }

    static func pieces(_ buffer: ByteBuffer, _ byteByByte: Bool) -> [ByteBuffer] {
        guard byteByByte else { return [buffer] }
        return (0..<buffer.readableBytes).map { buffer.getSlice(at: buffer.readerIndex + $0, length: 1)! }
    }

    static func joined(_ buffers: ByteBuffer...) -> ByteBuffer {
        var all = ByteBuffer()
        for var buffer in buffers { all.writeBuffer(&buffer) }
        return all
    }

    /// A GO handshake, with STARTTLS refused by the relay in between.
    static func handshake() -> [Step] {
        [
            .server(greeting()),
            .client(joined(clientFlags(), option(NBDOption.startTLS.rawValue), option(NBDOption.structuredReply.rawValue))),
            .server(optionReply(NBDOption.structuredReply.rawValue, type: 1)),
            .client(option(NBDOption.go.rawValue, data: [0, 0, 0, 0, 0, 0])),
            .server(joined(exportInfo(size: 1 << 20, flags: 1), optionReply(NBDOption.go.rawValue, type: 1))),
        ]
    }

    // MARK: Tests

    @Test(arguments: [false, true])
    func handshakePassesThroughExceptStartTLS(byteByByte: Bool) throws {
        let outcome = try Self.drive(Self.handshake(), byteByByte: byteByByte)
        // The server never sees STARTTLS.
        let expectedToServer = Self.joined(Self.clientFlags(), Self.option(NBDOption.structuredReply.rawValue),
                                           Self.option(NBDOption.go.rawValue, data: [0, 0, 0, 0, 0, 0]))
        #expect(outcome.toServer == expectedToServer)
        // The client gets the relay's POLICY error first, in order, then the server's replies.
        let expectedToClient = Self.joined(Self.greeting(), Self.optionReply(NBDOption.startTLS.rawValue, type: (1 << 31) | 2),
                                           Self.optionReply(NBDOption.structuredReply.rawValue, type: 1),
                                           Self.exportInfo(size: 1 << 20, flags: 1), Self.optionReply(NBDOption.go.rawValue, type: 1))
        #expect(outcome.toClient == expectedToClient)
        #expect(outcome.answeredByRelay == [NBDOption.startTLS.rawValue])
        #expect(outcome.exportSize == 1 << 20)
    }

    @Test(arguments: [false, true])
    func extendedHeadersIsRefusedWithUnsupported(byteByByte: Bool) throws {
        let steps: [Step] = [.server(Self.greeting()), .client(Self.joined(Self.clientFlags(), Self.option(11)))]
        let outcome = try Self.drive(steps, byteByByte: byteByByte)
        #expect(outcome.toServer == Self.clientFlags())
        #expect(outcome.toClient == Self.joined(Self.greeting(), Self.optionReply(11, type: (1 << 31) | 1)))
    }

    @Test(arguments: [false, true])
    func requestsAndRepliesAreMatchedAndPassedThrough(byteByByte: Bool) throws {
        var hole = ByteBuffer()
        hole.writeInteger(UInt64(8192))
        hole.writeInteger(UInt32(4096))
        var errorBody = ByteBuffer()
        errorBody.writeInteger(UInt32(5))
        errorBody.writeInteger(UInt16(0))
        let clientBytes = Self.joined(Self.request(.write, cookie: 1, offset: 0, length: 4096, payload: 4096),
                                      Self.request(.read, cookie: 2, offset: 4096, length: 4096),
                                      Self.request(.read, cookie: 3, offset: 8192, length: 4096),
                                      Self.request(.trim, cookie: 4, offset: 0, length: 512))
        let serverBytes = Self.joined(Self.simpleReply(cookie: 2, payload: 4096),
                                      Self.chunk(cookie: 3, type: 2, flags: 1, body: hole),
                                      Self.simpleReply(cookie: 1),
                                      Self.chunk(cookie: 4, type: (1 << 15) + 1, flags: 1, body: errorBody))
        let outcome = try Self.drive(Self.handshake() + [.client(clientBytes), .server(serverBytes)], byteByByte: byteByByte)
        #expect(outcome.requests.map(\.cookie) == [1, 2, 3, 4])
        #expect(outcome.replies.map(\.0.cookie) == [2, 3, 1, 4])
        #expect(outcome.replies.map(\.1) == [nil, nil, nil, .eio])
        var toServer = outcome.toServer
        toServer.moveReaderIndex(forwardBy: 4 + 16 + 22)  // the handshake's part
        #expect(toServer == clientBytes)
        #expect(outcome.toClient.readableBytes > serverBytes.readableBytes)
        let tail = outcome.toClient.getSlice(at: outcome.toClient.writerIndex - serverBytes.readableBytes,
                                             length: serverBytes.readableBytes)
        #expect(tail == serverBytes)
    }

    @Test func clientBytesAfterGoWaitForTheAnswer() throws {
        var decoder = RelayDecoder()
        _ = try decoder.serverSent(Self.greeting())
        _ = try decoder.clientSent(Self.joined(Self.clientFlags(), Self.option(NBDOption.go.rawValue, data: [0, 0, 0, 0, 0, 0])))
        // A request pipelined behind GO is held, not taken for an option.
        let held = try decoder.clientSent(Self.request(.read, cookie: 9, offset: 0, length: 512))
        #expect(held.isEmpty)
        #expect(!decoder.wantsClientBytes)
        var outcome = Outcome()
        outcome.take(try decoder.serverSent(Self.optionReply(NBDOption.go.rawValue, type: 1)))
        #expect(outcome.requests.map(\.cookie) == [9])
        #expect(decoder.wantsClientBytes)
    }

    @Test func aHugeWriteIsPassedOnAsItComesNotBuffered() throws {
        var decoder = RelayDecoder()
        for step in Self.handshake() {
            switch step {
            case .client(let bytes): _ = try decoder.clientSent(bytes)
            case .server(let bytes): _ = try decoder.serverSent(bytes)
            }
        }
        let header = Self.request(.write, cookie: 1, offset: 0, length: UInt32.max)
        let events = try decoder.clientSent(header)
        #expect(events.count == 2)  // the header and the request; no payload yet, nothing kept
        var piece = ByteBuffer()
        piece.writeRepeatingByte(0, count: 65536)
        let more = try decoder.clientSent(piece)
        guard case .toServer(let slice)? = more.first else { Issue.record("no bytes passed on"); return }
        #expect(slice.readableBytes == 65536)
    }

    @Test func badFramingIsAViolationOfTheRightSide() throws {
        var decoder = RelayDecoder()
        _ = try decoder.serverSent(Self.greeting())
        #expect(throws: RelayViolation.self) { try decoder.clientSent(Self.joined(Self.clientFlags(), Self.request(.read, cookie: 1, offset: 0, length: 1))) }
        var server = RelayDecoder()
        var wrong = ByteBuffer()
        wrong.writeInteger(UInt64(0x1234))
        wrong.writeInteger(UInt64(0x5678))
        do {
            _ = try server.serverSent(wrong)
            Issue.record("a wrong greeting was accepted")
        } catch {
            #expect(error.side == .server)
        }
    }

    @Test func aReplyToAnUnknownCookieIsAServerViolation() throws {
        var decoder = RelayDecoder()
        for step in Self.handshake() {
            switch step {
            case .client(let bytes): _ = try decoder.clientSent(bytes)
            case .server(let bytes): _ = try decoder.serverSent(bytes)
            }
        }
        do {
            _ = try decoder.serverSent(Self.simpleReply(cookie: 77))
            Issue.record("a reply nobody asked for was accepted")
        } catch {
            #expect(error.side == .server)
        }
    }
}
