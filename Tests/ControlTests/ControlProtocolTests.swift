import Control
import NIOCore
import NIOEmbedded
import Testing
import Telemetry

/// The framing and the commands of the control protocol, without a socket.
@Suite struct ControlProtocolTests {
    @Test func splitsLinesAndDropsCarriageReturns() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(LineFrameDecoder(maximumLineBytes: 16)))
        try channel.writeInbound(ByteBuffer(string: "one\r\ntw"))
        try channel.writeInbound(ByteBuffer(string: "o\n\nthree"))
        var lines: [String] = []
        while let line = try channel.readInbound(as: ByteBuffer.self) { lines.append(String(buffer: line)) }
        #expect(lines == ["one", "two", ""])
        #expect(try channel.finish().isClean, "three has no newline at the end: dropped, not a command")
    }

    @Test func refusesALineOverTheBoundBeforeItsEnd() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(LineFrameDecoder(maximumLineBytes: 8)))
        #expect(throws: LineTooLongError.self) { try channel.writeInbound(ByteBuffer(string: "123456789")) }
        _ = try? channel.finish()
    }

    @Test func takesALineExactlyAtTheBound() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(LineFrameDecoder(maximumLineBytes: 8)))
        try channel.writeInbound(ByteBuffer(string: "12345678\n"))
        #expect(try channel.readInbound(as: ByteBuffer.self).map { String(buffer: $0) } == "12345678")
        _ = try channel.finish()
    }

    @Test(arguments: [
        (#"{"cmd":"add_lane"}"#, ControlCommand.addLane),
        (#"{"v":1,"cmd":"drop_lane"}"#, .dropLane(id: nil)),
        (#"{"cmd":"drop_lane","id":3}"#, .dropLane(id: 3)),
        (#" {"cmd":"pause"} "#, .pause),
        (#"{"cmd":"resume"}"#, .resume),
        (#"{"cmd":"stop"}"#, .stop),
        (#"{"cmd":"interval","ms":250}"#, .interval(milliseconds: 250)),
    ])
    func readsCommands(line: String, command: ControlCommand) throws {
        #expect(try ControlCommand(line: Array(line.utf8)) == command)
    }

    @Test(arguments: [
        ("garbage", "not JSON"), ("[1]", "must be a JSON object"), (#"{"v":2,"cmd":"stop"}"#, "version 2"),
        (#"{"id":1}"#, "missing \"cmd\""), (#"{"cmd":"fly"}"#, "unknown command \"fly\""),
        (#"{"cmd":"drop_lane","id":1.5}"#, "lane number"), (#"{"cmd":"interval","ms":5}"#, "from 100"),
    ])
    func refusesBadCommandsSayingWhy(line: String, reason: String) {
        #expect {
            _ = try ControlCommand(line: Array(line.utf8))
        } throws: { error in
            (error as? ControlCommandError)?.message.contains(reason) == true
        }
    }

    @Test func repliesAreVersionedObjects() throws {
        let success = try JSONValue.parse(ControlReply.success(.addLane, [("id", .int(5))]))
        #expect(success["v"]?.int == 1 && success["ok"]?.bool == true && success["cmd"]?.string == "add_lane"
                && success["id"]?.int == 5)
        let failure = try JSONValue.parse(ControlReply.failure("no \"lane\"\n"))
        #expect(failure["ok"]?.bool == false && failure["error"]?.string == "no \"lane\"\n")
    }
}
