import Foundation
import NBDTestSupport
import Testing

/// `nbdtop proxy` to an `nbds` upstream: real clients speak plaintext to the proxy, the
/// proxy speaks TLS to nbdkit `--tls=require`, and every way TLS can fail stays closed.
@Suite(.serialized) struct ProxyTLSTests {
    static let mib: UInt64 = 1 << 20

    /// The proxy's upstream URI for `server` with `certificates`' client folder.
    static func upstream(_ server: ServerProcess, _ certificates: TLSCertificates) -> String {
        server.tlsURI(TLSTests.query(certificates))
    }

    @Test func nbdcopyAndNbdinfoThroughTheProxyToATLSServer() throws {
        let certificates = try TLSCertificates()
        defer { certificates.remove() }
        let source = try TLSTests.nbdkit(certificates, ProxyEndToEndTests.sparseRandom(seed: 21))
        defer { source.stop() }
        let destination = try ServerProcess.nbdkit(ProxyEndToEndTests.sparseRandom(seed: 21))
        defer { destination.stop() }
        let proxy = try ProxyHarness(upstream: [Self.upstream(source, certificates)])
        defer { proxy.stop() }
        let info = try peer("nbdinfo", "--json", proxy.uri)
        #expect(info.status == 0, "\(info.stderr)")
        #expect(info.stdout.contains("\"export-size\": \(32 * Self.mib)"), "\(info.stdout)")
        // sparse-random fails every write that is not what the same seed serves: integrity.
        let copy = try peer("nbdcopy", "-C", "4", "-T", "4", proxy.uri, destination.uri)
        #expect(copy.status == 0, "\(copy.stderr)")
        #expect(proxy.waitFor { $0.events("client_left").count >= 5 })
        let (status, log) = try proxy.finish()
        #expect(status == 143)
        #expect(log.start?.string("dst_tls")?.hasPrefix("TLSv1.") == true, "\(log.start?.text ?? "")")
        let copiers = log.clients(named: "nbdcopy")
        #expect(copiers.count == 4, "clients: \(log.events("client_connected").map(\.text))")
        let read = copiers.compactMap { proxy.lastEntry(of: $0, in: log)?.uint("bytes") }.reduce(0, +)
        #expect(read > 0 && read <= 32 * Self.mib)
        #expect(log.events("client_left").allSatisfy { $0.bool("failed") == false }, "\(log.events("client_left").map(\.text))")
        let violations = try StatsSchema.violations(in: proxy.command.stdout)
        #expect(violations.isEmpty, "\(violations)")
    }

    @Test func qemuImgThroughTheTLSProxyEqualsADirectCopy() throws {
        let certificates = try TLSCertificates()
        defer { certificates.remove() }
        let source = try TLSTests.nbdkit(certificates, ["pattern", "16M"])
        defer { source.stop() }
        let plain = try ServerProcess.nbdkit(["pattern", "16M"])
        defer { plain.stop() }
        let proxy = try ProxyHarness(upstream: [Self.upstream(source, certificates)])
        defer { proxy.stop() }
        let difference = try proxy.qemuImgCopyDiffers(fromDirect: plain.uri)
        #expect(difference == nil, "\(difference ?? "")")
    }

    @Test func nbdtopCopyThroughTheTLSProxyIntoSparseRandom() throws {
        let certificates = try TLSCertificates()
        defer { certificates.remove() }
        let source = try ServerProcess.nbdkit(ProxyEndToEndTests.sparseRandom(seed: 23))
        defer { source.stop() }
        let destination = try TLSTests.nbdkit(certificates, ProxyEndToEndTests.sparseRandom(seed: 23))
        defer { destination.stop() }
        let proxy = try ProxyHarness(upstream: [Self.upstream(destination, certificates)])
        defer { proxy.stop() }
        let copy = try nbdtop("copy", "--no-tui", "-C", "2", source.uri, proxy.uri)
        #expect(copy.status == 0, "\(copy.stderr)")
        let (_, log) = try proxy.finish()
        #expect(proxy.bytesWritten(byClientsNamed: "nbdtop", in: log) == 32 * Self.mib)
    }

    /// The proxy presents the client certificate of the URI's folder, or uses a pre-shared key.
    @Test func clientCertificateAndPreSharedKeyUpstreams() throws {
        let certificates = try TLSCertificates(clientCertificate: true)
        defer { certificates.remove() }
        let verifying = try TLSTests.nbdkit(certificates, ["memory", "8M"], options: ["--tls-verify-peer"])
        defer { verifying.stop() }
        let keys = try certificates.pskFile(username: "nbdtop-test")
        let keyed = try ServerProcess.nbdkit(["memory", "16M"], options: ["--tls=require", "--tls-psk=\(keys)"])
        defer { keyed.stop() }
        for (upstream, size) in [(Self.upstream(verifying, certificates), 8 * Self.mib),
                                 (keyed.tlsURI("tls-psk-file=\(keys)&tls-username=nbdtop-test"), 16 * Self.mib)] {
            let proxy = try ProxyHarness(upstream: [upstream])
            defer { proxy.stop() }
            let info = try peer("nbdinfo", "--size", proxy.uri)
            #expect(info.status == 0, "\(upstream): \(info.stderr)")
            #expect(info.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "\(size)", "\(upstream)")
        }
    }

    @Test func captiveTLSUpstream() throws {
        let certificates = try TLSCertificates()
        defer { certificates.remove() }
        let directory = try TemporaryDirectory(prefix: "proxy-tls-captive")
        defer { directory.remove() }
        let run = try nbdtop("proxy", "--no-tui", "--stats-json", directory.file("stats.json"), "--run", "nbdinfo --size \"$uri\"",
                             directory.file("p.sock"), "--", "[", "nbdkit", "--tls=require",
                             "--tls-certificates=\(certificates.serverDirectory)", "memory", "8M", "]")
        #expect(run.status == 0, "\(run.stderr)")
        let log = try StatsLog(try String(contentsOfFile: directory.file("stats.json"), encoding: .utf8))
        #expect(log.start?.string("dst_tls") != nil, "\(log.start?.text ?? "")")
        #expect(log.events("client_left").first?.bool("failed") == false, "\(log.events("client_left").map(\.text))")
    }

    @Test(.timeLimit(.minutes(2))) func theDashboardShowsTheUpstreamsTLS() throws {
        let certificates = try TLSCertificates()
        defer { certificates.remove() }
        let server = try TLSTests.nbdkit(certificates, ["memory", "8M"])
        defer { server.stop() }
        let run = try DashboardRun { folder in ["proxy", folder.file("p.sock"), Self.upstream(server, certificates)] }
        defer { run.stop() }
        let screen = try run.terminal.waitForScreen("the header's TLS badge") { $0.contains("clients now/seen") && $0.contains("TLS dst") }
        #expect(!screen.contains("TLS src"))
        try run.terminal.type("q")
        try run.terminal.type("y")
        _ = try run.terminal.waitForExit()
        #expect(run.exitStatus == 0, "\(run.failureContext)")
    }

    // MARK: Failures

    @Test func wrongCertificateAuthorityExitsAtStart() throws {
        let certificates = try TLSCertificates(), other = try TLSCertificates()
        defer { certificates.remove(); other.remove() }
        let server = try TLSTests.nbdkit(certificates, ["memory", "8M"])
        defer { server.stop() }
        let directory = try TemporaryDirectory(prefix: "proxy-tls-ca")
        defer { directory.remove() }
        let result = try nbdtop("proxy", "--no-tui", directory.file("p.sock"), Self.upstream(server, other))
        #expect(result.status == 1, "\(result.stdout)\(result.stderr)")
        #expect(result.stderr.contains("accepted NBD_OPT_STARTTLS, but its certificate did not verify against \(other.clientDirectory)/ca-cert.pem"),
                "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: directory.file("p.sock")))
    }

    @Test func plaintextUpstreamGivenNbdsExitsAtStart() throws {
        let server = try ServerProcess.nbdkit(["memory", "8M"], options: ["--tls=off"])
        defer { server.stop() }
        let directory = try TemporaryDirectory(prefix: "proxy-tls-plain")
        defer { directory.remove() }
        let result = try nbdtop("proxy", "--no-tui", directory.file("p.sock"), server.tlsURI("tls-verify-peer=false"))
        #expect(result.status == 1, "\(result.stdout)\(result.stderr)")
        #expect(result.stderr.contains("refused NBD_OPT_STARTTLS"), "\(result.stderr)")
        #expect(result.stderr.contains("never falls back to plaintext"), "\(result.stderr)")
    }

    /// nbdinfo given `nbds` for the proxy sends NBD_OPT_STARTTLS to it: refused, and the
    /// proxy goes on serving plaintext clients.
    @Test func clientAskingTheProxyForTLSIsRefusedAndOthersGoOn() throws {
        let certificates = try TLSCertificates()
        defer { certificates.remove() }
        let server = try TLSTests.nbdkit(certificates, ["memory", "8M"])
        defer { server.stop() }
        let proxy = try ProxyHarness(upstream: [Self.upstream(server, certificates)])
        defer { proxy.stop() }
        let asking = try peer("nbdinfo", "--size", "nbds+unix:///?socket=\(proxy.socketPath)")
        #expect(asking.status != 0, "\(asking.stdout)")
        #expect(proxy.waitFor { $0.events("client_left").count == 1 })
        let plain = try peer("nbdinfo", "--size", proxy.uri)
        #expect(plain.status == 0, "\(plain.stderr)")
        #expect(plain.stdout.contains("\(8 * Self.mib)"))
        #expect(proxy.command.exitStatus == nil)
    }

    /// The upstream is fine at start, then (behind a symbolic link) becomes one that refuses
    /// TLS, then one whose certificate does not verify: each client is turned away with
    /// the reason, and no export is ever opened in the clear.
    @Test func upstreamThatStopsDoingTLSTurnsClientsAway() throws {
        let certificates = try TLSCertificates(), other = try TLSCertificates()
        defer { certificates.remove(); other.remove() }
        let good = try TLSTests.nbdkit(certificates, ["memory", "8M"])
        defer { good.stop() }
        let directory = try TemporaryDirectory(prefix: "proxy-tls-later")
        defer { directory.remove() }
        let logFile = directory.file("plain.log")
        let plain = try ServerProcess.nbdkit(["memory", "8M", "logfile=\(logFile)"], filters: ["log"], options: ["--tls=off"])
        defer { plain.stop() }
        let stranger = try TLSTests.nbdkit(other, ["memory", "8M"])
        defer { stranger.stop() }
        let link = directory.file("upstream.sock")
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: good.socketPath)
        let proxy = try ProxyHarness(upstream: ["nbds+unix:///?socket=\(link)&\(TLSTests.query(certificates))"])
        defer { proxy.stop() }

        for (target, reason) in [(plain, "refused NBD_OPT_STARTTLS"), (stranger, "certificate did not verify")] {
            unlink(link)
            try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: target.socketPath)
            let before = proxy.lines.events("client_left").count
            let info = try peer("nbdinfo", "--size", proxy.uri)
            #expect(info.status != 0, "\(info.stdout)")
            #expect(proxy.waitFor { $0.events("client_left").count > before })
            let left = proxy.lines.events("client_left").last
            #expect(left?.bool("failed") == true)
            #expect(left?.string("reason")?.contains(reason) == true, "\(left?.text ?? "")")
        }
        let opened = (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? ""
        #expect(!opened.contains("Connect"), "the plaintext server opened an export: \(opened)")

        unlink(link)
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: good.socketPath)
        let info = try peer("nbdinfo", "--size", proxy.uri)
        #expect(info.status == 0, "\(info.stderr)")
    }

    /// A server that accepts NBD_OPT_STARTTLS and hangs up: the client hears why, as the
    /// answer to its option (qemu-img prints what the server reported).
    @Test func upstreamThatHangsUpAfterAcceptingTLSIsReportedToTheClient() throws {
        let certificates = try TLSCertificates()
        defer { certificates.remove() }
        let good = try TLSTests.nbdkit(certificates, ["memory", "8M"])
        defer { good.stop() }
        let hangsUp = try ScriptedServer(handshake: { connection in
            try connection.sendGreeting()
            _ = try connection.receiveClientFlags()
            let (option, _) = try connection.receiveOption()
            try connection.sendOptionReply(option: option, type: 1)  // NBD_REP_ACK
            return .close
        })
        defer { hangsUp.stop() }
        let directory = try TemporaryDirectory(prefix: "proxy-tls-hangup")
        defer { directory.remove() }
        let link = directory.file("upstream.sock")
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: good.socketPath)
        let proxy = try ProxyHarness(upstream: ["nbds+unix:///?socket=\(link)&\(TLSTests.query(certificates))"])
        defer { proxy.stop() }
        unlink(link)
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: hangsUp.socketPath)
        let info = try peer("qemu-img", "info", proxy.uri)
        #expect(info.status != 0, "\(info.stdout)")
        #expect(info.stderr.contains("upstream: TLS: the server accepted NBD_OPT_STARTTLS"), "\(info.stderr)")
        #expect(proxy.waitFor { !$0.events("client_left").isEmpty })
        let left = proxy.lines.events("client_left").last
        #expect(left?.bool("failed") == true)
        #expect(left?.string("reason")?.contains("accepted NBD_OPT_STARTTLS") == true, "\(left?.text ?? "")")
        #expect(proxy.command.exitStatus == nil)
    }
}
