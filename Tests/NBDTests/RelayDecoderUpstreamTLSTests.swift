import NBD
import NIOCore
import Testing

/// `RelayDecoder(upstreamTLS: true)`: the relay's own NBD_OPT_STARTTLS towards the server,
/// the client held meanwhile, and a client turned away when the server will not do TLS.
@Suite struct RelayDecoderUpstreamTLSTests {
    typealias Wire = RelayDecoderTests

    static let startTLS = NBDOption.startTLS.rawValue
    static let go = NBDOption.go.rawValue
    static let policy: UInt32 = (1 << 31) | 2

    /// Greeting and the client's flags with its first option in the same read.
    static func started(byteByByte: Bool) throws -> (RelayDecoder, RelayDecoderTests.Outcome) {
        var decoder = RelayDecoder(upstreamTLS: true)
        var outcome = RelayDecoderTests.Outcome()
        for piece in Wire.pieces(Wire.greeting(), byteByByte) { outcome.take(try decoder.serverSent(piece)) }
        let client = Wire.joined(Wire.clientFlags(), Wire.option(go, data: [0, 0, 0, 0, 0, 0]))
        for piece in Wire.pieces(client, byteByByte) { outcome.take(try decoder.clientSent(piece)) }
        return (decoder, outcome)
    }

    @Test(arguments: [false, true])
    func theRelayAsksForTLSAndHoldsTheClientUntilItIsUp(byteByByte: Bool) throws {
        var (decoder, outcome) = try Self.started(byteByByte: byteByByte)
        // The client's flags, then the relay's STARTTLS; the client's GO is held.
        #expect(outcome.toServer == Wire.joined(Wire.clientFlags(), Wire.option(Self.startTLS)))
        #expect(!decoder.wantsClientBytes)
        for piece in Wire.pieces(Wire.optionReply(Self.startTLS, type: 1), byteByByte) {
            outcome.take(try decoder.serverSent(piece))
        }
        #expect(outcome.upstreamTLSAccepted)
        // The ACK is the relay's: the client never sees it.
        #expect(outcome.toClient == Wire.greeting())
        outcome.take(try decoder.upstreamTLSEstablished())
        #expect(outcome.toServer == Wire.joined(Wire.clientFlags(), Wire.option(Self.startTLS),
                                                 Wire.option(Self.go, data: [0, 0, 0, 0, 0, 0])))
        outcome.take(try decoder.serverSent(Wire.joined(Wire.exportInfo(size: 4096, flags: 1), Wire.optionReply(Self.go, type: 1))))
        #expect(outcome.exportSize == 4096)
    }

    @Test func bytesInTheClearAfterTheAckAreAViolation() throws {
        var (decoder, _) = try Self.started(byteByByte: false)
        _ = try decoder.serverSent(Wire.optionReply(Self.startTLS, type: 1))
        #expect(throws: RelayViolation.self) { try decoder.serverSent(Wire.optionReply(Self.go, type: 1)) }
    }

    @Test(arguments: [false, true])
    func aRefusalTurnsTheClientAwayWithTheReason(byteByByte: Bool) throws {
        var (decoder, outcome) = try Self.started(byteByByte: byteByByte)
        let message = Array("TLS is off".utf8)
        for piece in Wire.pieces(Wire.optionReply(Self.startTLS, type: Self.policy, data: message), byteByByte) {
            outcome.take(try decoder.serverSent(piece))
        }
        #expect(outcome.upstreamTLSRefusals == ["TLS is off"])
        let toServerBefore = outcome.toServer
        outcome.take(try decoder.turnAwayClient("upstream: no TLS"))
        // The held GO is answered by the relay with the reason; nothing more goes to the server.
        #expect(outcome.toClient == Wire.joined(Wire.greeting(), Wire.optionReply(Self.go, type: Self.policy,
                                                                                      data: Array("upstream: no TLS".utf8))))
        #expect(outcome.toServer == toServerBefore)
        #expect(!outcome.turnedAway)
        for piece in Wire.pieces(Wire.option(NBDOption.abort.rawValue), byteByByte) { outcome.take(try decoder.clientSent(piece)) }
        #expect(outcome.turnedAway)
        #expect(outcome.toServer == toServerBefore)
    }

    @Test func aTurnedAwayClientIsCutOffAfterManyOptions() throws {
        var (decoder, outcome) = try Self.started(byteByByte: false)
        outcome.take(try decoder.turnAwayClient("no"))
        // The held GO was the first refused.
        for _ in 1..<RelayDecoder.maximumRefusedOptions { outcome.take(try decoder.clientSent(Wire.option(NBDOption.structuredReply.rawValue))) }
        #expect(!outcome.turnedAway)
        outcome.take(try decoder.clientSent(Wire.option(NBDOption.structuredReply.rawValue)))
        #expect(outcome.turnedAway)
    }

    @Test func anOldStyleServerCannotStartTLS() throws {
        var decoder = RelayDecoder(upstreamTLS: true)
        var greeting = ByteBuffer()
        greeting.writeInteger(NBDMagic.initPassword)
        greeting.writeInteger(NBDMagic.oldstyle)
        #expect(throws: RelayViolation.self) { try decoder.serverSent(greeting) }
    }
}
