import Foundation
import NBDTestSupport
import Testing

/// `nbdtop info --map` against `nbdinfo --map` on the same servers.
@Suite struct ExtentMapTests {
    struct Server: Sendable, CustomTestStringConvertible {
        var name: String
        var start: @Sendable () throws -> ServerProcess
        var testDescription: String { name }
    }

    static let servers: [Server] = [
        Server(name: "nbdkit sparse-random") {
            try .nbdkit(["sparse-random", "64M", "seed=7", "percent=30", "runlength=1048576"])
        },
        Server(name: "nbdkit memory, data written") {
            let server = try ServerProcess.nbdkit(["memory", "32M"])
            try writeData(to: server.uri, at: [0, 5 << 20, 17 << 20 + 4096])
            return server
        },
        Server(name: "qemu-nbd over a sparse file") {
            // Written through the server, so the rest of its sparse raw file stays holes.
            let server = try ServerProcess.qemuNBD(imageSize: 48 << 20)
            try writeData(to: server.uri, at: [1 << 20, 20 << 20, (48 << 20) - 65536])
            return server
        },
    ]

    /// Writes 64 KiB of non-zero bytes at each offset, with qemu-io over NBD.
    static func writeData(to uri: String, at offsets: [Int]) throws {
        for offset in offsets {
            let write = try CommandRunner.run(["qemu-io", "-f", "raw", "-c", "write -P 0x33 \(offset) 65536", uri])
            guard write.status == 0 else { throw TestSupportError("qemu-io: \(write.stderr)") }
        }
    }

    /// (offset, length, type) from either tool's text.
    static func triples(_ text: String) -> [[String]] {
        text.split(separator: "\n").map { $0.split(separator: " ").prefix(3).map(String.init) }
    }

    @Test(arguments: servers)
    func mapMatchesNbdinfo(server: Server) throws {
        let process = try server.start()
        defer { process.stop() }
        let ours = try nbdtop("info", "--map", process.uri)
        let theirs = try peer("nbdinfo", "--map", process.uri)
        #expect(ours.status == 0, "\(ours.stderr)")
        #expect(theirs.status == 0, "\(theirs.stderr)")
        #expect(Self.triples(ours.stdout).count > 1, "a map with data and holes: \(ours.stdout)")
        #expect(Self.triples(ours.stdout) == Self.triples(theirs.stdout))
        #expect(ours.stdout.contains("data") && ours.stdout.contains("zero"))
        // Same columns and words, character for character.
        #expect(ours.stdout == theirs.stdout)
    }

    @Test(arguments: servers)
    func totalsMatchNbdinfo(server: Server) throws {
        let process = try server.start()
        defer { process.stop() }
        let ours = try nbdtop("info", "--map", "--totals", process.uri)
        let theirs = try peer("nbdinfo", "--map", "--totals", process.uri)
        #expect(ours.status == 0, "\(ours.stderr)")
        #expect(theirs.status == 0)
        #expect(!ours.stdout.isEmpty)
        #expect(ours.stdout == theirs.stdout)
    }

    @Test func jsonMatchesNbdinfo() throws {
        let process = try Self.servers[0].start()
        defer { process.stop() }
        for extra in [[], ["--totals"]] {
            let ours = try CommandRunner.run([try CommandRunner.nbdtopBinary(), "info", "--map", "--json"] + extra + [process.uri])
            let theirs = try CommandRunner.run(["nbdinfo", "--map", "--json"] + extra + [process.uri])
            #expect(ours.status == 0, "\(ours.stderr)")
            let ourValue = try JSONSerialization.jsonObject(with: Data(ours.stdout.utf8)) as? [[String: Any]]
            let theirValue = try JSONSerialization.jsonObject(with: Data(theirs.stdout.utf8)) as? [[String: Any]]
            #expect(ourValue != nil && (ourValue?.count ?? 0) > 1, "\(ours.stdout)")
            #expect(ourValue.map { NSArray(array: $0) } == theirValue.map { NSArray(array: $0) }, "\(extra)")
            #expect(ours.stdout == theirs.stdout, "written as nbdinfo writes it")
        }
    }

    /// Without structured replies there is no block status: an error, as nbdinfo says it.
    @Test func exportWithoutBlockStatusFails() throws {
        let process = try ServerProcess.nbdkit(["memory", "1M"], options: ["--no-sr"])
        defer { process.stop() }
        let ours = try nbdtop("info", "--map", process.uri)
        #expect(ours.status == 1)
        #expect(ours.stdout.isEmpty)
        #expect(ours.stderr.contains("does not support metadata context \"base:allocation\""), "\(ours.stderr)")
        #expect(try peer("nbdinfo", "--map", process.uri).status == 1)
    }

    @Test func totalsNeedMap() throws {
        let result = try nbdtop("info", "--totals", "/tmp/none.sock")
        #expect(result.status == 2)
        #expect(result.stderr.contains("--totals needs --map"), "\(result.stderr)")
    }
}
