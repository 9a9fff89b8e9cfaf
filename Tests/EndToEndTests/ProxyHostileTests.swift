import Foundation
import NBDTestSupport
import Testing

/// What a client or server can do to the proxy: only its own connection suffers.
@Suite(.serialized) struct ProxyHostileTests {
    /// Connects to `path`, sends `bytes`, runs `whileOpen`, and closes.
    static func sendRaw(_ bytes: [UInt8], to path: String, whileOpen: () -> Void = {}) throws {
        let fd = try UnixSocket.connect(to: path)
        defer { close(fd) }
        _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        whileOpen()
    }

    static func bigEndian<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
        withUnsafeBytes(of: value.bigEndian) { Array($0) }
    }

    /// A client's side of a fixed-newstyle handshake that asks for the default export
    /// (flags, then NBD_OPT_GO with no name and no information requests), followed by
    /// one request of `type`; the proxy holds the request back until the server has answered.
    static func handshake(thenRequest type: UInt16, handle: UInt64, length: UInt32) -> [UInt8] {
        var bytes: [UInt8] = bigEndian(UInt32(3))
        bytes += bigEndian(UInt64(0x4948_4156_454f_5054)) + bigEndian(UInt32(7)) + bigEndian(UInt32(6))
        bytes += [0, 0, 0, 0, 0, 0]
        bytes += bigEndian(UInt32(0x2560_9513)) + bigEndian(UInt16(0)) + bigEndian(type)
        bytes += bigEndian(handle) + bigEndian(UInt64(0)) + bigEndian(length)
        return bytes
    }

    @Test func garbageAndAVanishingClientLeaveTheProxyServing() throws {
        let server = try ServerProcess.nbdkit(["memory", "4M"])
        defer { server.stop() }
        let proxy = try ProxyHarness(upstream: [server.uri])
        defer { proxy.stop() }
        // Open until the proxy has judged it (a close with the greeting unread would reset the connection first).
        try Self.sendRaw(Array(repeating: 0xff, count: 64), to: proxy.socketPath) {
            _ = proxy.waitFor { !$0.events("client_left").isEmpty }
        }
        // A WRITE of 1 MiB with only 1000 bytes of it; leave once it is in flight.
        let vanishing = Self.handshake(thenRequest: 1, handle: 42, length: 1 << 20) + Array(repeating: 0x5a, count: 1000)
        try Self.sendRaw(vanishing, to: proxy.socketPath) {
            _ = proxy.waitFor { log in log.samples.last?.conns.contains { $0.int("inflight") == 1 } ?? false }
        }
        #expect(proxy.waitFor { $0.events("client_left").count >= 2 })
        let info = try peer("nbdinfo", "--size", proxy.uri)
        #expect(info.status == 0, "\(info.stderr)")
        #expect(info.stdout.hasPrefix("4194304"))
        let (status, log) = try proxy.finish()
        #expect(status == 143)
        let reasons = log.events("client_left").filter { $0.bool("failed") == true }.compactMap { $0.string("reason") }
        #expect(reasons.contains { $0.contains("client broke the NBD protocol") }, "\(reasons)")
        #expect(reasons.contains { $0.contains("client went away with 1 request in flight") },
                "\(log.events("client_left").map(\.text))")
    }

    @Test func aClientThatSaysGoodbyeLeavesCleanlyWhicheverSocketClosesFirst() throws {
        let server = try ServerProcess.nbdkit(["memory", "4M"])
        defer { server.stop() }
        let proxy = try ProxyHarness(upstream: [server.uri])
        defer { proxy.stop() }
        // NBD_CMD_DISC, and the socket stays open: the proxy sees nbdkit close its side first,
        // as it may with nbdcopy on a loaded machine.
        try Self.sendRaw(Self.handshake(thenRequest: 2, handle: 7, length: 0), to: proxy.socketPath) {
            _ = proxy.waitFor { !$0.events("client_left").isEmpty }
        }
        let (_, log) = try proxy.finish()
        let left = log.events("client_left")
        #expect(left.count == 1 && left.first?.bool("failed") == false, "\(left.map(\.text))")
        #expect(left.first?.string("reason") == "client disconnected", "\(left.map(\.text))")
    }

    @Test func upstreamKilledMidCopyIsReportedAndNewClientsAreServedWhenItIsBack() throws {
        let server = try ServerProcess.nbdkit(["pattern", "64M", "rate=16000000", "burstiness=0.1"], filters: ["rate"])
        defer { server.stop() }
        let proxy = try ProxyHarness(upstream: [server.uri])
        defer { proxy.stop() }
        let copy = try BackgroundCommand(["nbdcopy", "-C", "1", "--no-extents", proxy.uri, "null:"])
        defer { copy.stop() }
        #expect(proxy.waitFor { log in (log.samples.last?.uint("bytes_done") ?? 0) > 0 })
        server.crash()
        #expect(copy.wait(timeout: .seconds(60)).map { $0 != 0 } == true)
        #expect(proxy.waitFor { $0.events("client_left").contains { ($0.string("reason") ?? "").contains("upstream") } })
        // While it is down, a new client is turned away cleanly.
        #expect(try peer("nbdinfo", "--size", proxy.uri).status != 0)
        #expect(proxy.waitFor { !$0.events("client_refused").isEmpty })
        try server.restart()
        let info = try peer("nbdinfo", "--size", proxy.uri)
        #expect(info.status == 0, "\(info.stderr)")
        #expect(proxy.command.exitStatus == nil)
    }

    @Test func aStallIsShownOnQemuImgsConnection() throws {
        let directory = try TemporaryDirectory(prefix: "proxy-stall")
        defer { directory.remove() }
        // A server that answers one connection's requests one at a time, and is slow once.
        let script = directory.file("slow.sh")
        try """
            #!/bin/sh
            case "$1" in
              get_size) echo 8388608 ;;
              pread)
                if [ "$4" -le 4194304 ] && [ $(( $4 + $3 )) -gt 4194304 ]; then sleep 2; fi
                head -c "$3" /dev/zero ;;
              *) exit 2 ;;
            esac
            """.write(toFile: script, atomically: true, encoding: .utf8)
        chmod(script, 0o755)
        let server = try ServerProcess.nbdkit(["sh", script, "serialize=requests"], filters: ["noparallel"])
        defer { server.stop() }
        let proxy = try ProxyHarness(upstream: [server.uri], options: ["--stall-threshold", "500ms"])
        defer { proxy.stop() }
        let convert = try peer("qemu-img", "convert", "-n", "-f", "raw", proxy.uri, "--target-image-opts", "driver=null-co,size=8M")
        #expect(convert.status == 0, "\(convert.stderr)")
        let (_, log) = try proxy.finish()
        let qemuImg = log.clients(named: "qemu-img")
        #expect(!qemuImg.isEmpty)
        let stalled = Set(log.events("stall").compactMap { $0.int("id") })
        #expect(!stalled.isEmpty && stalled.isSubset(of: Set(qemuImg)), "stalls on \(stalled), qemu-img is \(qemuImg)")
        #expect(qemuImg.contains { (proxy.lastEntry(of: $0, in: log)?.int("stall_episodes") ?? 0) >= 1 })
        #expect(log.events("client_connected").allSatisfy { ($0.object("client")?.int("pid") ?? 0) > 0 })
    }
}
