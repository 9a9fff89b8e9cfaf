import Foundation
import NBD
import NBDCopy
import NBDTestSupport
import NIOCore
import Testing

@Suite struct CaptiveServerTests {
    /// Whether the process is gone (reaped, so not even a zombie).
    static func isGone(_ pid: pid_t) -> Bool {
        kill(pid, 0) != 0 && errno == ESRCH
    }

    @Test func nbdkitPatternFourConnections() async throws {
        let captive = try CaptiveServer.start(["nbdkit", "-r", "pattern", "64M"])
        #expect(captive.commandLine == "nbdkit -r pattern 64M")
        #expect(captive.uri.transport == .unix(path: captive.socketPath))
        #expect(captive.exitStatusIfExited == nil)

        // Four connections all open at once (each reads before any disconnects).
        let results = try await withThrowingTaskGroup(of: NBDConnection.self) { group in
            for _ in 0..<4 { group.addTask { try await NBDConnection.connect(to: captive.uri) } }
            var connections: [NBDConnection] = []
            for try await connection in group { connections.append(connection) }
            var results: [(UInt64, [UInt8])] = []
            for (index, connection) in connections.enumerated() {
                #expect(connection.info.size == 64 << 20)
                #expect(connection.info.canMultiConn)
                let offset = UInt64(index) * (16 << 20) + 12_344
                results.append((offset, Array(try await connection.read(offset: offset, length: 256 << 10).readableBytesView)))
            }
            for connection in connections { await connection.disconnect() }
            return results
        }
        #expect(results.count == 4)
        for (offset, bytes) in results {
            #expect(bytes == TestBytes.pattern(offset: offset, count: 256 << 10), "pattern at \(offset)")
        }

        // Still listening after those left.
        let again = try await captive.connect()
        #expect(try await Array(again.read(offset: 8, length: 8).readableBytesView) == TestBytes.pattern(offset: 8, count: 8))
        await again.disconnect()

        let pid = captive.pid
        await captive.stop()
        #expect(Self.isGone(pid))
        #expect(captive.exitStatusIfExited != nil)
        #expect(!FileManager.default.fileExists(atPath: captive.directory))
    }

    @Test func qemuNBDSharedClients() async throws {
        let folder = try TemporaryDirectory(prefix: "nbdtop-captive")
        defer { folder.remove() }
        let image = folder.file("disk.img")
        let size = 4 << 20
        #expect(FileManager.default.createFile(atPath: image, contents: Data(TestBytes.make(offset: 0, count: size, seed: 9))))

        // -e 4: four clients at once (and multi-conn); without -t it exits when they leave.
        let captive = try CaptiveServer.start(["qemu-nbd", "-f", "raw", "-r", "-e", "4", image])
        defer { captive.stopBlocking() }
        let results = try await withThrowingTaskGroup(of: NBDConnection.self) { group in
            for _ in 0..<4 { group.addTask { try await captive.connect() } }
            var connections: [NBDConnection] = []
            for try await connection in group { connections.append(connection) }
            var results: [(UInt64, [UInt8], Bool)] = []
            for (index, connection) in connections.enumerated() {
                #expect(connection.info.size == UInt64(size))
                let offset = UInt64(index) << 20
                let bytes = try await connection.read(offset: offset, length: 1 << 20)
                results.append((offset, Array(bytes.readableBytesView), connection.info.canMultiConn))
            }
            for connection in connections { await connection.disconnect() }
            return results
        }
        #expect(results.count == 4)
        for (offset, bytes, multiConn) in results {
            #expect(multiConn)
            #expect(bytes == TestBytes.make(offset: offset, count: 1 << 20, seed: 9), "data at \(offset)")
        }
        let pid = captive.pid
        await captive.stop()
        #expect(Self.isGone(pid))
    }

    @Test func socketActivationEnvironment() async throws {
        let folder = try TemporaryDirectory(prefix: "nbdtop-captive")
        defer { folder.remove() }
        let report = folder.file("report")
        // The server sees its own pid in LISTEN_PID, LISTEN_FDS=1, a socket on fd 3, no stdin.
        let script = "echo $$ $LISTEN_PID $LISTEN_FDS > \(report).tmp; "
            + "if [ -S /dev/fd/3 ]; then echo socket >> \(report).tmp; fi; "
            + "if [ -e /dev/fd/4 ]; then echo fd4 >> \(report).tmp; fi; "
            + "mv \(report).tmp \(report); exec sleep 30"
        let captive = try CaptiveServer.start(["sh", "-c", script])
        defer { captive.stopBlocking() }
        let deadline = ContinuousClock.now + .seconds(10)
        while !FileManager.default.fileExists(atPath: report) && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
        let lines = try String(contentsOfFile: report, encoding: .utf8).split(separator: "\n")
        #expect(lines.first == "\(captive.pid) \(captive.pid) 1")
        #expect(lines.contains("socket"))
        #expect(!lines.contains("fd4"), "nothing else leaks into the server")
        await captive.stop()
        #expect(captive.exitStatusIfExited == .killed(signal: SIGTERM))
        #expect(Self.isGone(captive.pid))
    }

    @Test func stubbornServerIsKilled() async throws {
        let captive = try CaptiveServer.start(["sh", "-c", "trap '' TERM; while :; do sleep 0.05; done"])
        try await Task.sleep(for: .milliseconds(200))
        #expect(captive.exitStatusIfExited == nil)
        await captive.stop(timeout: .milliseconds(300))
        #expect(captive.exitStatusIfExited == .killed(signal: SIGKILL))
        #expect(Self.isGone(captive.pid))
    }

    @Test func missingCommandIsNamed() async throws {
        let message = await endpointErrorMessage {
            _ = try CaptiveServer.start(["nbdtop-no-such-server", "memory", "1M"])
        }
        #expect(message?.contains("nbdtop-no-such-server") == true, "\(message ?? "")")
        #expect(message?.contains("not found") == true, "\(message ?? "")")
    }

    @Test func serverThatExitsEarlyIsNamed() async throws {
        let captive = try CaptiveServer.start(["sh", "-c", "exit 3"])
        defer { captive.stopBlocking() }
        let message = await endpointErrorMessage { _ = try await captive.connect() }
        #expect(message?.contains("sh -c 'exit 3'") == true, "\(message ?? "")")
        #expect(message?.contains("exited with status 3") == true, "\(message ?? "")")

        // nbdkit refusing its arguments, with its complaint in the log.
        let folder = try TemporaryDirectory(prefix: "nbdtop-captive")
        defer { folder.remove() }
        let log = folder.file("server.log")
        let nbdkit = try CaptiveServer.start(["nbdkit", "nbdtop-no-such-plugin"], logPath: log)
        defer { nbdkit.stopBlocking() }
        let refused = await endpointErrorMessage { _ = try await nbdkit.connect() }
        #expect(refused?.contains("nbdkit nbdtop-no-such-plugin") == true, "\(refused ?? "")")
        #expect(refused?.contains("exited with status 1") == true, "\(refused ?? "")")
        #expect(refused?.contains("nbdtop-no-such-plugin") == true)
    }

    @Test func aServerThatDiesMidCopyIsReportedWithItsLastLines() async throws {
        // Serves (a real nbdkit on the activated socket) until the test has connected, then
        // says why it goes. The inner shell sets LISTEN_PID to its own pid and becomes
        // nbdkit, as nbdtop's does. (A fixed second before the kill was too short for nbdkit
        // to start on a loaded machine; 30 s at most.)
        let folder = try TemporaryDirectory(prefix: "nbdtop-captive")
        defer { folder.remove() }
        let connected = folder.file("connected")
        let captive = try CaptiveServer.start(["sh", "-c", "sh -c 'LISTEN_PID=$$ exec nbdkit -f -r pattern 1M' & "
                                                  + "i=0; until [ -e '\(connected)' ] || [ $i -ge 600 ]; do sleep 0.05; i=$((i+1)); done; kill -9 $!; "
                                                  + "echo 'first line' >&2; echo 'the disk went away' >&2; exit 7"])
        defer { captive.stopBlocking() }
        let connection = try await captive.connect()
        #expect(FileManager.default.createFile(atPath: connected, contents: nil))
        let exited = await captive.exitAfterLostConnection(grace: .seconds(10))
        let message = try #require(exited)
        #expect(message.contains("exited with status 7"), "\(message)")
        #expect(message.contains("first line / the disk went away"), "\(message)")
        await connection.disconnect()
    }
}
