import Foundation
import NBDTestSupport
import Testing

/// `nbds` URIs against nbdkit and qemu-nbd with certificates made per test, and each
/// way TLS can fail.
@Suite(.serialized) struct TLSTests {
    static let mib: UInt64 = 1 << 20

    /// nbdkit `--tls=require` with the certificates' server folder.
    static func nbdkit(_ certificates: TLSCertificates, _ arguments: [String], options: [String] = []) throws -> ServerProcess {
        try .nbdkit(arguments, options: ["--tls=require", "--tls-certificates=\(certificates.serverDirectory)"] + options)
    }

    /// qemu-nbd with an x509 credentials object on the certificates' server folder (qemu asks
    /// for client certificates unless told not to).
    static func qemuNBD(_ certificates: TLSCertificates, arguments: [String] = []) throws -> ServerProcess {
        try .qemuNBD(imageSize: 64 * mib, arguments: [
            "--object", "tls-creds-x509,id=tls0,endpoint=server,verify-peer=off,dir=\(certificates.serverDirectory)",
            "--tls-creds", "tls0",
        ] + arguments)
    }

    static func query(_ certificates: TLSCertificates) -> String { "tls-certificates=\(certificates.clientDirectory)" }

    // MARK: Copies

    @Test func sparseRandomIntoSparseRandomOverUnixSockets() throws {
        let certificates = try TLSCertificates()
        defer { certificates.remove() }
        let image = ["sparse-random", "128M", "seed=77", "percent=30", "runlength=1048576"]
        let source = try Self.nbdkit(certificates, image), destination = try Self.nbdkit(certificates, image)
        defer { source.stop(); destination.stop() }
        let result = try nbdtop("copy", "-C", "4", "--stats-json", "-",
                                source.tlsURI(Self.query(certificates)), destination.tlsURI(Self.query(certificates)))
        #expect(result.status == 0, "\(result.stderr)\n\(destination.log)")
        let log = try StatsLog(result.stdout)
        #expect(try StatsSchema.violations(in: result.stdout).isEmpty)
        #expect(log.done?.uint("bytes_done") == 128 * Self.mib)
        #expect(log.start?.string("src_tls")?.hasPrefix("TLSv1.") == true, "\(result.stdout.prefix(400))")
        #expect(log.start?.string("dst_tls")?.hasPrefix("TLSv1.") == true)
        let lanes = Set(log.samples.flatMap(\.conns).filter { ($0.uint("bytes") ?? 0) > 0 }.compactMap { $0.int("id") })
        #expect(lanes.count >= 2, "lanes that moved data: \(lanes)")
    }

    @Test func patternOverTCPEqualsNbdcopy() throws {
        let certificates = try TLSCertificates()
        defer { certificates.remove() }
        let source = try ServerProcess.nbdkitTCP(["pattern", "\(48 * Self.mib + 12345)"],
                                                 options: ["-r", "--tls=require", "--tls-certificates=\(certificates.serverDirectory)"])
        defer { source.stop() }
        let folder = try TemporaryDirectory(prefix: "nbdtop-tls-copy")
        defer { folder.remove() }
        let ours = folder.file("ours.img"), theirs = folder.file("theirs.img")
        let uri = source.tlsURI(Self.query(certificates))
        let result = try nbdtop("copy", "--no-tui", "-C", "2", uri, ours)
        #expect(result.status == 0, "\(result.stderr)\n\(source.log)")
        let reference = try peer("nbdcopy", uri, theirs)
        try #require(reference.status == 0, "\(reference.stderr)")
        let compare = try peer("cmp", ours, theirs)
        #expect(compare.status == 0, "\(compare.stdout)\(compare.stderr)")
        #expect(try ImageCheck.firstPatternMismatch(inFile: ours) == nil)
    }

    @Test func patternIntoQemuNBDOverTLS() throws {
        let certificates = try TLSCertificates()
        defer { certificates.remove() }
        let source = try Self.nbdkit(certificates, ["pattern", "64M"], options: ["-r"])
        defer { source.stop() }
        let destination = try Self.qemuNBD(certificates, arguments: ["-e", "4"])
        defer { destination.stop() }
        let result = try nbdtop("copy", "-C", "4", "--flush", source.tlsURI(Self.query(certificates)),
                                destination.tlsURI(Self.query(certificates)))
        #expect(result.status == 0, "\(result.stderr)\n\(destination.log)")
        #expect(try ImageCheck.firstPatternMismatch(inFile: destination.directory.file("disk.img")) == nil)
    }

    @Test func captiveServerWithTLSOptions() throws {
        let certificates = try TLSCertificates()
        defer { certificates.remove() }
        let folder = try TemporaryDirectory(prefix: "nbdtop-tls-captive")
        defer { folder.remove() }
        let output = folder.file("out.img")
        let result = try nbdtop("copy", "-C", "2", "--stats-json", "-", "--", "[", "nbdkit", "--tls=require",
                                "--tls-certificates=\(certificates.serverDirectory)", "-r", "pattern", "16M", "]", output)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try StatsLog(result.stdout).start?.string("src_tls")?.hasPrefix("TLSv1.") == true)
        #expect(try StatsLog(result.stdout).start?.isNull("dst_tls") == true)
        #expect(try StatsSchema.violations(in: result.stdout).isEmpty)
        #expect(try ImageCheck.firstPatternMismatch(inFile: output) == nil)
        #expect(try ImageCheck.sizes(of: output).size == 16 * Self.mib)
    }

    /// qemu-nbd with a PSK credentials object as a captive server: the folder's keys.psk,
    /// under the login name.
    @Test func captiveQemuNBDWithPreSharedKeys() throws {
        let certificates = try TLSCertificates()
        defer { certificates.remove() }
        let folder = try TemporaryDirectory(prefix: "nbdtop-tls-captive-psk")
        defer { folder.remove() }
        let user = String(cString: getpwuid(geteuid()).pointee.pw_name)
        let keys = try certificates.pskFile(username: user)
        let image = folder.file("in.img"), output = folder.file("out.img")
        try Data((0..<(4 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 13) }).write(to: URL(fileURLWithPath: image))
        let keysFolder = (keys as NSString).deletingLastPathComponent
        let result = try nbdtop("copy", "--stats-json", "-", "--", "[", "qemu-nbd", "--object",
                                "tls-creds-psk,id=k,endpoint=server,dir=\(keysFolder)", "--tls-creds", "k", "-f", "raw",
                                image, "]", output)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try StatsLog(result.stdout).start?.string("src_tls")?.hasPrefix("TLSv1.2") == true)
        #expect(FileManager.default.contentsEqual(atPath: image, andPath: output))
    }

    @Test func defaultFolderUnderHome() throws {
        let certificates = try TLSCertificates()
        defer { certificates.remove() }
        let home = try TemporaryDirectory(prefix: "nbdtop-home")
        defer { home.remove() }
        try FileManager.default.createDirectory(atPath: home.file(".pki"), withIntermediateDirectories: false)
        try FileManager.default.copyItem(atPath: certificates.clientDirectory, toPath: home.file(".pki/libnbd"))
        let server = try Self.nbdkit(certificates, ["memory", "8M"])
        defer { server.stop() }
        var environment = ProcessInfo.processInfo.environment
        environment["HOME"] = home.path
        let found = try CommandRunner.run([try CommandRunner.nbdtopBinary(), "info", server.tlsURI()], environment: environment)
        #expect(found.status == 0, "\(found.stderr)")
        #expect(found.stdout.contains("with TLS"), "\(found.stdout)")
        environment["HOME"] = home.file("elsewhere")
        let missing = try CommandRunner.run([try CommandRunner.nbdtopBinary(), "info", server.tlsURI()], environment: environment)
        #expect(missing.status == 1, "\(missing.stdout)\(missing.stderr)")
        #expect(missing.stderr.contains("did not verify against the system's trusted certificates"), "\(missing.stderr)")
    }

    @Test func reconnectsUseTLSAgain() throws {
        let certificates = try TLSCertificates()
        defer { certificates.remove() }
        let source = try ServerProcess.nbdkit(ReliabilityTests.sparseRandom(seed: 5, capped: true), filters: ["rate"],
                                              options: ["--tls=require", "--tls-certificates=\(certificates.serverDirectory)"])
        defer { source.stop() }
        let destination = try Self.nbdkit(certificates, ReliabilityTests.sparseRandom(seed: 5, capped: false))
        defer { destination.stop() }
        let copy = try CopyCommandTests.startedCopy(["-C", "2", "--reconnect", "30s", source.tlsURI(Self.query(certificates)),
                                                     destination.tlsURI(Self.query(certificates))])
        defer { copy.stop() }
        let status = try ReliabilityTests.crashAndRestart(source, during: copy)
        #expect(status == 0, "exit \(String(describing: status)): \(copy.stderr)\n\(destination.log)")
        let log = try StatsLog(copy.stdout)
        #expect(log.events("lane_reconnected").contains { $0.string("side") == "src" })
        #expect(log.done?.uint("bytes_done") == 64 * Self.mib)
    }

    // MARK: info

    @Test(arguments: ["nbdkit", "qemu-nbd"])
    func infoReportsTLS(server kind: String) throws {
        let certificates = try TLSCertificates()
        defer { certificates.remove() }
        let server = kind == "nbdkit" ? try Self.nbdkit(certificates, ["memory", "8M"]) : try Self.qemuNBD(certificates)
        defer { server.stop() }
        let uri = server.tlsURI(Self.query(certificates))
        let json = try nbdtop("info", "--json", uri)
        #expect(json.status == 0, "\(json.stderr)")
        let ours = try parseJSON(json.stdout)
        #expect(ours["TLS"] as? Bool == true)
        #expect((ours["tls_version"] as? String)?.hasPrefix("TLSv1.") == true, "\(json.stdout)")
        #expect((ours["tls_cipher"] as? String)?.hasPrefix("TLS_") == true, "\(json.stdout)")
        let theirs = try parseJSON(try peer("nbdinfo", "--json", uri).stdout)
        #expect(theirs["TLS"] as? Bool == true)
        let ourSize = (ours["exports"] as? [[String: Any]])?.first?["export-size"] as? Int
        #expect(ourSize == (theirs["exports"] as? [[String: Any]])?.first?["export-size"] as? Int)
        let text = try nbdtop("info", uri)
        #expect(text.status == 0, "\(text.stderr)")
        #expect(text.stdout.contains("with TLS (TLSv1."), "\(text.stdout)")
    }

    // MARK: Failures

    @Test func wrongCertificateAuthority() throws {
        let certificates = try TLSCertificates(), other = try TLSCertificates()
        defer { certificates.remove(); other.remove() }
        let server = try Self.nbdkit(certificates, ["memory", "8M"])
        defer { server.stop() }
        let result = try nbdtop("info", server.tlsURI(Self.query(other)))
        #expect(result.status == 1, "\(result.stdout)\(result.stderr)")
        #expect(result.stderr.contains("accepted NBD_OPT_STARTTLS, but its certificate did not verify against \(other.clientDirectory)/ca-cert.pem"),
                "\(result.stderr)")
        let unchecked = try nbdtop("info", server.tlsURI(Self.query(other) + "&tls-verify-peer=false"))
        #expect(unchecked.status == 0, "tls-verify-peer=false: \(unchecked.stderr)")
    }

    @Test func plaintextServerRefusesStartTLS() throws {
        let server = try ServerProcess.nbdkit(["memory", "8M"], options: ["--tls=off"])
        defer { server.stop() }
        let result = try nbdtop("copy", server.tlsURI("tls-verify-peer=false"), "null:")
        #expect(result.status == 1, "\(result.stdout)\(result.stderr)")
        #expect(result.stderr.contains("refused NBD_OPT_STARTTLS"), "\(result.stderr)")
        #expect(result.stderr.contains("never falls back to plaintext"), "\(result.stderr)")
    }

    @Test func plaintextURIForTLSServer() throws {
        let certificates = try TLSCertificates()
        defer { certificates.remove() }
        let server = try Self.nbdkit(certificates, ["memory", "8M"])
        defer { server.stop() }
        let result = try nbdtop("info", server.uri)
        #expect(result.status == 1, "\(result.stdout)\(result.stderr)")
        #expect(result.stderr.contains("requires TLS: use nbds://"), "\(result.stderr)")
    }

    @Test func hostnameMismatch() throws {
        let certificates = try TLSCertificates(subjectAltNames: "DNS:elsewhere.example")
        defer { certificates.remove() }
        let server = try ServerProcess.nbdkitTCP(["memory", "8M"],
                                                 options: ["--tls=require", "--tls-certificates=\(certificates.serverDirectory)"])
        defer { server.stop() }
        let result = try nbdtop("info", server.tlsURI(Self.query(certificates)))
        #expect(result.status == 1, "\(result.stdout)\(result.stderr)")
        #expect(result.stderr.contains("certificate is not for '127.0.0.1'"), "\(result.stderr)")
        let named = try nbdtop("info", server.tlsURI(Self.query(certificates) + "&tls-hostname=elsewhere.example"))
        #expect(named.status == 0, "tls-hostname: \(named.stderr)")
    }

    @Test func clientCertificates() throws {
        let certificates = try TLSCertificates(clientCertificate: true)
        defer { certificates.remove() }
        let server = try Self.nbdkit(certificates, ["memory", "8M"], options: ["--tls-verify-peer"])
        defer { server.stop() }
        let accepted = try nbdtop("copy", "-C", "2", server.tlsURI(Self.query(certificates)), "null:")
        #expect(accepted.status == 0, "\(accepted.stderr)\n\(server.log)")
        // The same authority's folder without the client's certificate and key.
        let caOnly = certificates.directory.file("ca-only")
        try FileManager.default.createDirectory(atPath: caOnly, withIntermediateDirectories: false)
        try FileManager.default.copyItem(atPath: certificates.clientDirectory + "/ca-cert.pem", toPath: caOnly + "/ca-cert.pem")
        let refused = try nbdtop("info", server.tlsURI("tls-certificates=\(caOnly)"))
        #expect(refused.status == 1, "\(refused.stdout)\(refused.stderr)")
        // In TLS 1.3 the client's part of the handshake ends before the server checks it.
        #expect(refused.stderr.contains("TLS: the TLS handshake finished, but the server then ended the connection"),
                "\(refused.stderr)")
    }

    @Test func preSharedKey() throws {
        let certificates = try TLSCertificates()
        defer { certificates.remove() }
        let keys = try certificates.pskFile(username: "nbdtop-test")
        let server = try ServerProcess.nbdkit(["memory", "8M"], options: ["--tls=require", "--tls-psk=\(keys)"])
        defer { server.stop() }
        let result = try nbdtop("info", "--json", server.tlsURI("tls-psk-file=\(keys)&tls-username=nbdtop-test"))
        #expect(result.status == 0, "\(result.stderr)\n\(server.log)")
        #expect(try parseJSON(result.stdout)["TLS"] as? Bool == true)
        let stranger = try nbdtop("info", server.tlsURI("tls-psk-file=\(keys)&tls-username=stranger"))
        #expect(stranger.status == 1, "\(stranger.stdout)\(stranger.stderr)")
        #expect(stranger.stderr.contains("has no key for 'stranger'"), "\(stranger.stderr)")
        // A key of our own that the server does not have.
        let otherKeys = try certificates.pskFile(username: "nbdtop-test", name: "other.psk")
        let wrongKey = try nbdtop("info", server.tlsURI("tls-psk-file=\(otherKeys)&tls-username=nbdtop-test"))
        #expect(wrongKey.status == 1, "\(wrongKey.stdout)\(wrongKey.stderr)")
        #expect(wrongKey.stderr.contains("ended the TLS handshake: it does not accept the pre-shared key of 'nbdtop-test'"),
                "\(wrongKey.stderr)")
    }
}
