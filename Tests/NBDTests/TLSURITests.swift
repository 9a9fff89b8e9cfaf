@testable import NBD
import NIOCore
import Testing

/// The `tls-*` query parameters of `nbds` URIs, and the small parsers behind TLS.
@Suite struct TLSURITests {
    @Test func defaultsWithoutParameters() throws {
        let uri = try NBDURI.parse("nbds://example.com/disk")
        #expect(uri.tls)
        #expect(uri.tlsParameters == NBDTLSParameters())
        #expect(uri.tlsParameters.verifyPeer)
    }

    @Test func everyParameterIsRead() throws {
        let uri = try NBDURI.parse("nbds+unix:///x?socket=/s&tls-certificates=/etc/my%20pki&tls-verify-peer=false&tls-hostname=server.example")
        #expect(uri.transport == .unix(path: "/s"))
        #expect(uri.tlsParameters.certificatesDirectory == "/etc/my pki")
        #expect(!uri.tlsParameters.verifyPeer)
        #expect(uri.tlsParameters.hostname == "server.example")
        let psk = try NBDURI.parse("nbds://h:1234/?tls-psk-file=/k.psk&tls-username=alice")
        #expect(psk.tlsParameters.pskFile == "/k.psk")
        #expect(psk.tlsParameters.username == "alice")
    }

    @Test(arguments: ["true", "on", "yes", "1", "TRUE"])
    func verifyPeerTrueSpellings(value: String) throws {
        #expect(try NBDURI.parse("nbds://h/?tls-verify-peer=\(value)").tlsParameters.verifyPeer)
    }

    @Test func plaintextSchemesIgnoreTLSParameters() throws {
        let uri = try NBDURI.parse("nbd://h/?tls-certificates=/x&tls-verify-peer=banana")
        #expect(!uri.tls)
        #expect(uri.tlsParameters == NBDTLSParameters())
    }

    @Test(arguments: [
        ("nbds://h/?tls-verify-peer=maybe", "tls-verify-peer"),
        ("nbds://h/?tls-certificates=", "needs a value"),
        ("nbds://h/?tls-username=bob", "goes with tls-psk-file"),
        ("nbds://h/?tls-psk-file=/k&tls-certificates=/d", "cannot be used together"),
    ])
    func badParameters(text: String, reason: String) {
        #expect {
            _ = try NBDURI.parse(text)
        } throws: { error in
            guard case NBDError.invalidURI(let uri, let why) = error else { return false }
            return uri == text && why.contains(reason)
        }
    }

    @Test func canonicalFormKeepsTLSParameters() throws {
        for text in ["nbds+unix:///a?socket=/tmp/s&tls-certificates=/d&tls-verify-peer=false",
                     "nbds://host:1234/disk?tls-hostname=other&tls-psk-file=/k&tls-username=u",
                     "nbds://[::1]/x"] {
            let uri = try NBDURI.parse(text)
            #expect(uri.canonical == text)
            #expect(try NBDURI.parse(uri.canonical) == uri.withText(uri.canonical))
        }
    }

    @Test func otherExportKeepsTLS() throws {
        let uri = try NBDURI.parse("nbds://h/a?tls-certificates=/d").withExportName("b")
        #expect(uri.tls && uri.exportName == "b" && uri.tlsParameters.certificatesDirectory == "/d")
    }

    // MARK: Pre-shared key files

    @Test func pskFileFindsTheUsersKey() throws {
        let text = "alice:00ff10\nbob:0A0b\n"
        #expect(try PreSharedKeyFile.key(for: "bob", inText: text, path: "k") == [0x0a, 0x0b])
        #expect(throws: NBDError.self) { try PreSharedKeyFile.key(for: "carol", inText: text, path: "k") }
        #expect(throws: NBDError.self) { try PreSharedKeyFile.key(for: "x", inText: "x:abc\n", path: "k") }
        #expect(throws: NBDError.self) { try PreSharedKeyFile.key(for: "x", inText: "x:zz\n", path: "k") }
    }

    // MARK: The server's hello

    static func serverHello(sessionID: Int, suite: UInt16) -> ByteBuffer {
        var body = ByteBuffer()
        body.writeInteger(UInt16(0x0303))
        body.writeRepeatingByte(7, count: 32)
        body.writeInteger(UInt8(sessionID))
        body.writeRepeatingByte(9, count: sessionID)
        body.writeInteger(suite)
        body.writeInteger(UInt8(0))
        var record = ByteBuffer()
        record.writeInteger(UInt8(22))
        record.writeInteger(UInt16(0x0303))
        record.writeInteger(UInt16(body.readableBytes + 4))
        record.writeInteger(UInt8(2))
        record.writeInteger(UInt8(0))
        record.writeInteger(UInt16(body.readableBytes))
        record.writeBuffer(&body)
        return record
    }

    @Test func serverHelloGivesItsSuite() {
        let hello = Self.serverHello(sessionID: 32, suite: 0x1302)
        #expect(ServerHelloObserver.parse(hello) == .found(0x1302))
        #expect(TLSCipherSuiteName.name(0x1302) == "TLS_AES_256_GCM_SHA384")
        #expect(TLSCipherSuiteName.name(0xABCD) == "0xABCD")
        for cut in [0, 1, 10, 44, 76] {
            #expect(ServerHelloObserver.parse(hello.getSlice(at: 0, length: cut)!) == .needMore, "cut at \(cut)")
        }
        var alert = ByteBuffer()
        alert.writeBytes([21, 3, 3, 0, 2, 2, 40])
        #expect(ServerHelloObserver.parse(alert) == .notAHello)
    }
}
