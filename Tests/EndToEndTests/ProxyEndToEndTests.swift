import Foundation
import NBDTestSupport
import Testing

/// `nbdtop proxy` between real clients (nbdcopy, qemu-img, nbdinfo, nbdtop copy) and real
/// servers (nbdkit, qemu-nbd, nbd-server).
@Suite(.serialized) struct ProxyEndToEndTests {
    static let mib: UInt64 = 1 << 20

    static func sparseRandom(seed: Int) -> [String] {
        ["sparse-random", "32M", "seed=\(seed)", "percent=50", "runlength=1048576"]
    }

    @Test func nbdcopyWithFourConnectionsCopiesSparseRandomIntact() throws {
        let source = try ServerProcess.nbdkit(Self.sparseRandom(seed: 3))
        defer { source.stop() }
        let destination = try ServerProcess.nbdkit(Self.sparseRandom(seed: 3))
        defer { destination.stop() }
        let proxy = try ProxyHarness(upstream: [source.uri])
        defer { proxy.stop() }
        // Multi-conn is the server's, passed through.
        #expect(try peer("nbdinfo", "--can", "multi-conn", proxy.uri).status == 0)
        let copy = try peer("nbdcopy", "-C", "4", "-T", "4", proxy.uri, destination.uri)
        #expect(copy.status == 0, "\(copy.stderr)")
        // nbdinfo's and nbdcopy's connections have all been seen to leave.
        #expect(proxy.waitFor { $0.events("client_left").count >= 5 })
        let (status, log) = try proxy.finish()
        #expect(status == 143)
        let copiers = log.clients(named: "nbdcopy")
        #expect(copiers.count == 4, "clients: \(log.events("client_connected").map(\.text))")
        let read = copiers.compactMap { proxy.lastEntry(of: $0, in: log)?.uint("bytes") }.reduce(0, +)
        #expect(read > 0 && read <= 32 * Self.mib)
        #expect(log.samples.last?.double("coverage_read") ?? 0 > 0)
        #expect(log.events("client_left").count >= 5)
    }

    @Test func qemuImgThroughTheProxyReadsWhatADirectCopyReads() throws {
        let source = try ServerProcess.nbdkit(["pattern", "16M"])
        defer { source.stop() }
        let proxy = try ProxyHarness(upstream: [source.uri])
        defer { proxy.stop() }
        let difference = try proxy.qemuImgCopyDiffers(fromDirect: source.uri)
        #expect(difference == nil, "\(difference ?? "")")
        let (_, log) = try proxy.finish()
        #expect(!log.clients(named: "qemu-img").isEmpty, "\(log.events("client_connected").map(\.text))")
    }

    @Test func nbdinfoMapThroughTheProxyIsTheServers() throws {
        let source = try ServerProcess.nbdkit(Self.sparseRandom(seed: 5))
        defer { source.stop() }
        let proxy = try ProxyHarness(upstream: [source.uri])
        defer { proxy.stop() }
        let through = try peer("nbdinfo", "--map", proxy.uri)
        let direct = try peer("nbdinfo", "--map", source.uri)
        #expect(through.status == 0, "\(through.stderr)")
        #expect(!direct.stdout.isEmpty)
        #expect(through.stdout == direct.stdout)
    }

    @Test func nbdtopCopyThroughTheProxyIntoSparseRandom() throws {
        let source = try ServerProcess.nbdkit(Self.sparseRandom(seed: 11))
        defer { source.stop() }
        let destination = try ServerProcess.nbdkit(Self.sparseRandom(seed: 11))
        defer { destination.stop() }
        let proxy = try ProxyHarness(upstream: [destination.uri])
        defer { proxy.stop() }
        let copy = try nbdtop("copy", "--no-tui", "-C", "2", source.uri, proxy.uri)
        #expect(copy.status == 0, "\(copy.stderr)")
        let (_, log) = try proxy.finish()
        #expect(proxy.bytesWritten(byClientsNamed: "nbdtop", in: log) == 32 * Self.mib)
        #expect(log.samples.last?.double("coverage_written") == 1)
    }

    @Test(arguments: ["qemu-nbd", "nbd-server"])
    func otherUpstreams(_ server: String) throws {
        let directory = try TemporaryDirectory(prefix: "proxy-upstream")
        defer { directory.remove() }
        let image = try ServerProcess.makeImage(in: directory, size: 8 * Self.mib)
        let upstream = server == "qemu-nbd" ? try ServerProcess.qemuNBD(image: image) : try ServerProcess.nbdServer(file: image)
        defer { upstream.stop() }
        let proxy = try ProxyHarness(upstream: [upstream.uri])
        defer { proxy.stop() }
        let copy = try peer("nbdcopy", "--", "[", "nbdkit", "pattern", "8M", "]", proxy.uri(export: upstream.exportName))
        #expect(copy.status == 0, "\(copy.stderr)")
        let readBack = directory.file("back.img")
        #expect(try peer("qemu-img", "convert", "-f", "raw", "-O", "raw", proxy.uri(export: upstream.exportName), readBack).status == 0)
        #expect(try peer("cmp", readBack, image).status == 0)
    }

    @Test func byteCountsEqualNbdkitsLog() throws {
        let directory = try TemporaryDirectory(prefix: "proxy-log")
        defer { directory.remove() }
        let logFile = directory.file("requests.log")
        // 256 MiB: two of nbdcopy's 128 MiB work slices, so both connections read.
        let source = try ServerProcess.nbdkit(["pattern", "256M", "logfile=\(logFile)"], filters: ["log"])
        defer { source.stop() }
        let proxy = try ProxyHarness(upstream: [source.uri])
        defer { proxy.stop() }
        #expect(try peer("nbdcopy", "-C", "2", "-T", "2", "--no-extents", proxy.uri, "null:").status == 0)
        let (_, log) = try proxy.finish()
        // nbdkit's log: `connection=N Read id=I offset=0x... count=0x... ...`, one line per request.
        var readByConnection: [Int: UInt64] = [:]
        let text = try String(contentsOfFile: logFile, encoding: .utf8)
        for line in text.split(separator: "\n") where line.contains(" Read ") && line.contains("count=") {
            let fields = Dictionary(line.split(separator: " ").compactMap { field -> (String, String)? in
                let parts = field.split(separator: "=", maxSplits: 1)
                return parts.count == 2 ? (String(parts[0]), String(parts[1])) : nil
            }, uniquingKeysWith: { first, _ in first })
            guard let connection = fields["connection"].flatMap({ Int($0) }),
                  let count = fields["count"].flatMap({ UInt64($0.dropFirst(2), radix: 16) }) else { continue }
            readByConnection[connection, default: 0] += count
        }
        let proxied = log.clients(named: "nbdcopy").compactMap { proxy.lastEntry(of: $0, in: log)?.uint("bytes") }
        #expect(proxied.count == 2)
        #expect(proxied.filter { $0 > 0 }.sorted() == readByConnection.values.sorted(), "log: \(readByConnection)")
        #expect(proxied.reduce(0, +) == 256 * Self.mib)
        // Latency by kind: the reads' percentiles, from the same round trips.
        let reads = log.clients(named: "nbdcopy").compactMap { proxy.lastEntry(of: $0, in: log)?.object("ops")?.object("read") }
        #expect(reads.contains { ($0.double("p50_ms") ?? 0) > 0 && ($0.double("p99_ms") ?? 0) >= ($0.double("p50_ms") ?? 0) })
    }

    @Test func runExitsWithTheCommandsStatus() throws {
        let source = try ServerProcess.nbdkit(["pattern", "1M"])
        defer { source.stop() }
        let directory = try TemporaryDirectory(prefix: "proxy-run")
        defer { directory.remove() }
        let failing = try nbdtop("proxy", "--run", "nbdinfo \"$uri\" >/dev/null && exit 7", directory.file("a.sock"), source.uri)
        #expect(failing.status == 7, "\(failing.stderr)")
        let succeeding = try nbdtop("proxy", "--run", "test \"$uri\" = \"$NBD_URI\" && nbdinfo --size \"$uri\"",
                                    directory.file("b.sock"), source.uri)
        #expect(succeeding.status == 0, "\(succeeding.stderr)")
        #expect(succeeding.stdout.contains("1048576"))
    }

    @Test func captiveUpstreamWithRunAndOnce() throws {
        let directory = try TemporaryDirectory(prefix: "proxy-captive")
        defer { directory.remove() }
        let output = directory.file("out.img")
        let run = try nbdtop("proxy", "--stats-json", directory.file("stats.json"),
                             "--run", "qemu-img convert -n -f raw \"$uri\" --target-image-opts driver=null-co,size=8M",
                             directory.file("p.sock"), "--", "[", "nbdkit", "pattern", "8M", "]")
        #expect(run.status == 0, "\(run.stderr)")
        let log = try StatsLog(try String(contentsOfFile: directory.file("stats.json"), encoding: .utf8))
        #expect(log.start?.string("mode") == "proxy")
        #expect(log.done?.int("exit") == 0)
        let violations = try StatsSchema.violations(in: try String(contentsOfFile: directory.file("stats.json"), encoding: .utf8))
        #expect(violations.isEmpty, "\(violations)")
        // --once: ends when the last client leaves.
        let source = try ServerProcess.nbdkit(["pattern", "1M"])
        defer { source.stop() }
        let once = try BackgroundCommand([try CommandRunner.nbdtopBinary(), "proxy", "--once", "--stats-json", "-",
                                          directory.file("o.sock"), source.uri])
        defer { once.stop() }
        #expect(once.waitUntil(timeout: .seconds(30)) { (try? StatsLog(once.stdout, partial: true))?.start != nil })
        #expect(try peer("qemu-img", "convert", "-f", "raw", "-O", "raw", "nbd+unix:///?socket=\(directory.file("o.sock"))", output).status == 0)
        #expect(once.wait(timeout: .seconds(30)) == 0, "\(once.stderr)")
    }
}

extension ProxyEndToEndTests {
    @Test func lsListsTheProxyAndTCPClientsAreNamedByAddress() throws {
        let source = try ServerProcess.nbdkit(["pattern", "1M"])
        defer { source.stop() }
        // A free loopback port: tried until one binds.
        var started: (proxy: ProxyHarness, port: Int)?
        for _ in 0..<8 where started == nil {
            let port = Int.random(in: 20_000...60_000)
            if let proxy = try? ProxyHarness(upstream: [source.uri], listen: "nbd://127.0.0.1:\(port)") { started = (proxy, port) }
        }
        let (proxy, port) = try #require(started)
        defer { proxy.stop() }
        let info = try peer("nbdinfo", "--size", "nbd://127.0.0.1:\(port)")
        #expect(info.status == 0, "\(info.stderr)")
        let listing = try nbdtop("ls", "--json")
        #expect(listing.stdout.contains("\"pid\": \(proxy.command.pid)"), "\(listing.stdout)")
        #expect(listing.stdout.contains("nbd://127.0.0.1:\(port)"))
        let (_, log) = try proxy.finish()
        let client = log.events("client_connected").first?.object("client")
        #expect(client?.string("address") == "127.0.0.1")
        #expect((client?.int("port") ?? 0) > 0)
    }

    @Test func badArgumentsAreUsageErrors() throws {
        for arguments in [["proxy"], ["proxy", "/tmp/x.sock"], ["proxy", "/tmp/x.sock", "null:"],
                          ["proxy", "nbd://127.0.0.1:1/name", "/tmp/up.sock"], ["proxy", "--interval", "1ms", "/a", "/b"]] {
            let result = try CommandRunner.run([try CommandRunner.nbdtopBinary()] + arguments)
            #expect(result.status == 2, "\(arguments): \(result.stderr)")
            #expect(result.stderr.hasPrefix("nbdtop: "), "\(arguments): \(result.stderr)")
        }
    }
}

extension ProxyEndToEndTests {
    /// `nbdtop ls --json`, parsed.
    static func listing() throws -> [[String: Any]] {
        let result = try nbdtop("ls", "--json")
        guard result.status == 0,
              let entries = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]] else {
            throw TestSupportError("ls --json: \(result.status) \(result.stdout) \(result.stderr)")
        }
        return entries
    }

    @Test func lsTellsAProxyFromACopyAndShowsWhatItRelays() throws {
        // 64 MiB at 20 ms per 256 KiB read, one request at a time: about 5 s of relaying.
        let source = try ServerProcess.nbdkit(["--filter=delay", "pattern", "64M", "rdelay=20ms"])
        defer { source.stop() }
        let proxy = try ProxyHarness(upstream: [source.uri])
        defer { proxy.stop() }
        let pid = Int(proxy.command.pid)
        let client = try BackgroundCommand(["nbdcopy", "--requests=1", "--connections=1", proxy.uri, "null:"])
        defer { client.stop() }
        var running: [String: Any]?
        #expect(proxy.command.waitUntil(timeout: .seconds(30)) {
            running = (try? Self.listing())?.first { $0["pid"] as? Int == pid }
            return (running?["clients"] as? Int ?? 0) >= 1 && (running?["bytes_done"] as? Int ?? 0) > 0
        }, "\(running ?? [:])")
        #expect(running?["mode"] as? String == "proxy")
        #expect(running?["state"] as? String == "running")
        #expect(running?["lanes"] == nil, "a proxy has clients, not lanes")
        #expect(running?["dst"] as? String == source.uri)
        let line = try nbdtop("ls").stdout.split(separator: "\n").first { $0.hasPrefix("\(pid) ") }.map(String.init)
        #expect(line?.contains("  proxy  ") == true && line?.contains(" client") == true
                && line?.contains(" relayed") == true && line?.hasSuffix("running") == true, "\(line ?? "no line")")
        #expect(client.wait(timeout: .seconds(60)) == 0, "\(client.stderr)")
        let (status, _) = try proxy.finish()
        #expect(status == 143)
        let ended = try Self.listing().first { $0["pid"] as? Int == pid }
        #expect(ended?["mode"] as? String == "proxy" && ended?["state"] as? String == "done", "stopped as asked: \(ended ?? [:])")
        #expect(ended?["exit"] as? Int == 143)
        #expect(ended?["clients"] as? Int == 1, "\(ended ?? [:])")
        #expect((ended?["bytes_done"] as? Int ?? 0) >= 64 << 20, "\(ended ?? [:])")
        #expect(ended?["socket"] == nil)
    }
}
