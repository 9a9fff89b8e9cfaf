import NBD
import Testing

@Suite struct URITests {
    @Test func tcpForms() throws {
        #expect(try NBDURI.parse("nbd://example.com/disk").transport == .tcp(host: "example.com", port: 10809))
        #expect(try NBDURI.parse("nbd://example.com/disk").exportName == "disk")
        #expect(try NBDURI.parse("nbd://10.0.0.1:1234/").transport == .tcp(host: "10.0.0.1", port: 1234))
        #expect(try NBDURI.parse("nbd://[::1]:5000/a%20b").transport == .tcp(host: "::1", port: 5000))
        #expect(try NBDURI.parse("nbd://[::1]:5000/a%20b").exportName == "a b")
        #expect(try NBDURI.parse("nbd://[fe80::1]").transport == .tcp(host: "fe80::1", port: 10809))
        #expect(try NBDURI.parse("nbd://host//with/slash").exportName == "/with/slash")
        #expect(try NBDURI.parse("NBD://host").exportName == "")
    }

    /// Which servers share this machine's cores (the tuner's one lane a core).
    @Test func serversOnThisMachine() throws {
        for text in ["nbd+unix:///?socket=/s", "/run/nbd.sock", "nbd://localhost", "nbd://LOCALHOST:1234/x",
                     "nbd://127.0.0.1", "nbd://127.1.2.3:10810/", "nbd://[::1]:5000/"] {
            #expect(try NBDURI.parse(text).transport.isOnThisMachine, "\(text)")
        }
        for text in ["nbd://example.com/disk", "nbd://10.0.0.1:1234/", "nbd://[fe80::1]", "nbd://128.0.0.1",
                     "nbd://localhost.example.com"] {
            #expect(try !NBDURI.parse(text).transport.isOnThisMachine, "\(text)")
        }
    }

    @Test func unixForms() throws {
        let uri = try NBDURI.parse("nbd+unix:///export?socket=/tmp/my%20sock")
        #expect(uri.transport == .unix(path: "/tmp/my sock"))
        #expect(uri.exportName == "export")
        #expect(try NBDURI.parse("/run/nbd.sock").transport == .unix(path: "/run/nbd.sock"))
        #expect(try NBDURI.parse("./nbd.sock").exportName == "")
        #expect(try NBDURI.parse("nbd+unix:///?socket=/s&tls-certificates=/x").transport == .unix(path: "/s"))
    }

    @Test func tlsParsesButIsMarked() throws {
        #expect(try NBDURI.parse("nbds://host/x").tls)
        #expect(try NBDURI.parse("nbds+unix:///x?socket=/s").tls)
    }

    @Test(arguments: [
        ("http://host/x", "unknown scheme"),
        ("nbd+unix:///x", "missing socket"),
        ("nbd+unix://host/x?socket=/s", "no host"),
        ("nbd://host:99999/x", "port"),
        ("nbd://host:abc/x", "port"),
        ("nbd://[::1/x", "unclosed"),
        ("nbd://host/%zz", "percent"),
        ("nbd://user@host/", "user"),
        ("relative.sock", "expected"),
        ("", "empty"),
        ("nbd+vsock://1:2/", "vsock"),
    ])
    func malformed(text: String, reason: String) {
        #expect {
            _ = try NBDURI.parse(text)
        } throws: { error in
            guard case NBDError.invalidURI(let uri, let why) = error else { return false }
            return uri == text && why.contains(reason) && (error as! NBDError).isUsageError
        }
    }

    @Test func canonicalFormRoundTrips() throws {
        for text in ["nbd+unix:///a%20b?socket=/tmp/s", "nbd://host:1234/disk", "nbd://[::1]/x"] {
            let uri = try NBDURI.parse(text)
            #expect(uri.canonical == text)
            #expect(try NBDURI.parse(uri.canonical) == uri.withText(uri.canonical))
        }
    }
}

extension NBDURI {
    func withText(_ text: String) -> NBDURI {
        NBDURI(transport: transport, exportName: exportName, tls: tls, tlsParameters: tlsParameters, text: text)
    }
}
