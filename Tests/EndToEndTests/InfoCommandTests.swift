import Foundation
import NBDTestSupport
import Testing

/// `nbdtop info` against real servers, checked against nbdinfo, and its bad-input paths.
@Suite struct InfoCommandTests {
    struct Server: Sendable, CustomTestStringConvertible {
        var name: String
        var start: @Sendable () throws -> ServerProcess
        /// nbdinfo asks with NBD_OPT_INFO, which nbd-server answers with size 0.
        var nbdinfoSizeIsWrong = false
        var testDescription: String { name }
    }

    static let servers: [Server] = [
        Server(name: "nbdkit memory") { try .nbdkit(["memory", "64M"]) },
        Server(name: "nbdkit pattern -r") { try .nbdkit(["pattern", "64M"], options: ["-r"]) },
        Server(name: "nbdkit sparse-random") { try .nbdkit(["sparse-random", "64M", "seed=1"]) },
        Server(name: "nbdkit data") { try .nbdkit(["data", "1 2 3", "size=1M"]) },
        Server(name: "nbdkit blocksize-policy") {
            try .nbdkit(["memory", "64M", "blocksize-minimum=512", "blocksize-preferred=4096", "blocksize-maximum=65536"],
                        filters: ["blocksize-policy"])
        },
        Server(name: "nbdkit multi-conn disabled") { try .nbdkit(["memory", "64M", "multi-conn-mode=disable"], filters: ["multi-conn"]) },
        Server(name: "nbdkit --no-sr") { try .nbdkit(["memory", "64M"], options: ["--no-sr"]) },
        Server(name: "qemu-nbd -e 1") { try .qemuNBD(imageSize: 64 << 20) },
        Server(name: "qemu-nbd -e 2") { try .qemuNBD(imageSize: 64 << 20, arguments: ["-e", "2"]) },
        Server(name: "nbd-server", start: { try .nbdServer(imageSize: 64 << 20) }, nbdinfoSizeIsWrong: true),
    ]

    static let sharedTopKeys = ["protocol", "TLS", "structured"]
    static let sharedExportKeys = [
        "export-name", "contexts", "is_read_only", "is_rotational", "can_flush", "can_fua", "can_trim", "can_zero",
        "can_fast_zero", "can_df", "can_cache", "can_multi_conn",
        "block_size_minimum", "block_size_preferred", "block_size_maximum", "export-size",
    ]

    @Test(arguments: servers)
    func jsonAgreesWithNbdinfo(server: Server) throws {
        let process = try server.start()
        defer { process.stop() }
        let ours = try nbdtop("info", "--json", process.uri)
        #expect(ours.status == 0, "\(ours.stderr)")
        let theirs = try peer("nbdinfo", "--json", process.uri)
        #expect(theirs.status == 0, "\(theirs.stderr)")
        let oursJSON = try parseJSON(ours.stdout), theirsJSON = try parseJSON(theirs.stdout)
        for key in Self.sharedTopKeys {
            #expect("\(oursJSON[key] ?? "missing")" == "\(theirsJSON[key] ?? "missing")", "\(key)")
        }
        let ourExport = try #require((oursJSON["exports"] as? [[String: Any]])?.first)
        let theirExport = try #require((theirsJSON["exports"] as? [[String: Any]])?.first)
        for key in Self.sharedExportKeys {
            if key == "export-size" && server.nbdinfoSizeIsWrong {
                #expect(ourExport[key] as? Int == 64 << 20)
                continue
            }
            #expect("\(ourExport[key] ?? "absent")" == "\(theirExport[key] ?? "absent")", "\(key) differs")
        }
    }

    @Test func tcpAgreesWithNbdinfoAndCopies() throws {
        let process = try ServerProcess.nbdkitTCP(["pattern", "16M"])
        defer { process.stop() }
        let ours = try nbdtop("info", "--json", process.uri)
        #expect(ours.status == 0, "\(ours.stderr)")
        let theirs = try peer("nbdinfo", "--json", process.uri)
        let ourExport = try #require((try parseJSON(ours.stdout)["exports"] as? [[String: Any]])?.first)
        let theirExport = try #require((try parseJSON(theirs.stdout)["exports"] as? [[String: Any]])?.first)
        for key in Self.sharedExportKeys {
            #expect("\(ourExport[key] ?? "absent")" == "\(theirExport[key] ?? "absent")", "\(key) differs")
        }
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let copy = try nbdtop("copy", "--no-tui", "-C", "2", process.uri, directory.file("out.img"))
        #expect(copy.status == 0, "\(copy.stderr)")
        let bytes = try #require(FileManager.default.contents(atPath: directory.file("out.img")))
        #expect(bytes.count == 16 << 20)
        #expect(Array(bytes.prefix(4096)) == TestBytes.pattern(offset: 0, count: 4096))
        #expect(Array(bytes.suffix(4096)) == TestBytes.pattern(offset: (16 << 20) - 4096, count: 4096))
    }

    @Test func textOutputSaysWhyMultiConnIsOff() throws {
        let process = try ServerProcess.qemuNBD(imageSize: 1 << 20)
        defer { process.stop() }
        let result = try nbdtop("info", process.socketPath)
        #expect(result.status == 0)
        #expect(result.stdout.contains("export-size: 1048576 (1M)"))
        #expect(result.stdout.contains("multi-conn: no"))
        let flagsLine = result.stdout.split(separator: "\n").first { $0.contains("transmission flags:") }
        #expect(flagsLine?.contains("HAS_FLAGS") == true)
        #expect(flagsLine?.contains("CAN_MULTI_CONN") == false)
    }

    @Test func listShowsEveryExport() throws {
        let process = try ServerProcess.nbdServer(imageSize: 1 << 20, exportName: "disk")
        defer { process.stop() }
        let result = try nbdtop("info", "--list", "--json", "nbd+unix:///?socket=\(process.socketPath)")
        #expect(result.status == 0, "\(result.stderr)")
        let exports = try #require(try parseJSON(result.stdout)["exports"] as? [[String: Any]])
        #expect(exports.compactMap { $0["export-name"] as? String } == ["disk"])
        #expect(exports.first?["export-size"] as? Int == 1 << 20)
    }

    @Test func missingSocketFailsNamingIt() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let socket = directory.file("absent.sock")
        let result = try nbdtop("info", "nbd+unix:///?socket=\(socket)")
        #expect(result.status == 1)
        #expect(result.stderr.contains(socket))
        #expect(result.stderr.split(separator: "\n").count == 1, "one line: \(result.stderr)")
    }

    @Test func unknownExportFailsWithServersMessage() throws {
        let process = try ServerProcess.qemuNBD(imageSize: 1 << 20, exportName: "disk")
        defer { process.stop() }
        let result = try nbdtop("info", "nbd+unix:///nosuch?socket=\(process.socketPath)")
        #expect(result.status == 1)
        #expect(result.stderr.contains("nosuch"))
        // qemu-nbd's own words: "export 'nosuch' not present".
        #expect(result.stderr.contains("not present"), "\(result.stderr)")
    }

    @Test(arguments: [
        ["info", "http://example.com/disk"],
        ["info", "nbd+unix:///disk"],
        ["info", "nbd://host:70000/"],
        ["info", "nbds://localhost/disk?tls-username=nobody"],
        ["info", "not-a-uri"],
        ["info"],
        ["info", "--no-such-flag", "/tmp/x.sock"],
        ["no-such-command"],
    ])
    func usageErrorsExitTwo(arguments: [String]) throws {
        let result = try CommandRunner.run([try CommandRunner.nbdtopBinary()] + arguments)
        #expect(result.status == 2, "\(arguments): \(result.stderr)")
        #expect(result.stderr.hasPrefix("nbdtop: "), "\(result.stderr)")
        #expect(result.stdout.isEmpty)
    }
}
