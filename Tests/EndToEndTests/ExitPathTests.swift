import Foundation
import NBDTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// How `nbdtop copy` ends, headless, on every path: stop signals and their statuses, an
/// exit at once on a second one, the `done` event that always ends `--stats-json`, write
/// errors on that stream, and destination files that did not receive the whole image.
///
/// Serialized: the copies are rate-limited, and the machine has 2 cores.
@Suite(.serialized) struct ExitPathTests {
    static let mib: UInt64 = 1 << 20

    struct Stop: Sendable, CustomTestStringConvertible {
        var signal: Int32
        var name: String
        var exitStatus: Int32
        var testDescription: String { name }
    }

    static let interrupt = Stop(signal: SIGINT, name: "SIGINT", exitStatus: 130)
    static let terminate = Stop(signal: SIGTERM, name: "SIGTERM", exitStatus: 143)
    static let hangUp = Stop(signal: SIGHUP, name: "SIGHUP", exitStatus: 129)

    // MARK: Stop signals

    /// One signal stops cleanly: requests in flight finish, the server is left running,
    /// the new destination file is cut to the completed prefix.
    @Test(arguments: [terminate, hangUp])
    func stopSignalDrainsAndExitsWithItsStatus(stop: Stop) throws {
        let source = try Self.slowPattern()
        defer { source.stop() }
        let folder = try TemporaryDirectory(prefix: "nbdtop-exit")
        defer { folder.remove() }
        let output = folder.file("out.img")
        let copy = try CopyCommandTests.startedCopy(["-C", "4", "-R", "4", "--interval", "100ms", source.uri, output])
        defer { copy.stop() }
        copy.signal(stop.signal)
        let status = copy.wait(timeout: .seconds(50))
        #expect(status == stop.exitStatus, "exit status \(String(describing: status)): \(copy.stderr)")
        #expect(copy.stderr.contains("stopped by \(stop.name)"), "\(copy.stderr)")
        try Self.expectDone(copy.stdout, exit: stop.exitStatus)
        try Self.expectCutToReportedPrefix(output, stderr: copy.stderr)
        #expect(source.isRunning, "it disconnected politely: \(source.log)")
    }

    /// A second signal while the first waits for requests that never finish (the source
    /// is paused) exits at once, still ending the JSON lines with `done` and cutting the
    /// destination file to a prefix it holds.
    @Test(arguments: [interrupt, terminate])
    func secondSignalExitsAtOnce(stop: Stop) throws {
        let pause = try PauseSwitch()
        defer { pause.remove() }
        let source = try Self.slowPattern(pause: pause)
        defer { source.stop() }
        let folder = try TemporaryDirectory(prefix: "nbdtop-exit")
        defer { folder.remove() }
        let output = folder.file("out.img")
        let copy = try CopyCommandTests.startedCopy(["-C", "2", "-R", "4", "--interval", "100ms", source.uri, output])
        defer { copy.stop() }
        try pause.pause()
        copy.signal(stop.signal)
        let draining = copy.waitUntil(timeout: .seconds(10)) { copy.stderr.contains("finishing requests in flight") }
        try #require(draining, "the first signal was not handled: \(copy.stderr)")
        Self.waitPastTheSameSignalWindow()
        copy.signal(stop.signal)
        // Draining would wait a minute for the paused source before giving up.
        let status = copy.wait(timeout: .seconds(30))
        #expect(status == stop.exitStatus, "exit status \(String(describing: status)): \(copy.stderr)")
        #expect(copy.stderr.contains("again: exiting at once"), "\(copy.stderr)")
        try Self.expectDone(copy.stdout, exit: stop.exitStatus)
        try Self.expectCutToReportedPrefix(output, stderr: copy.stderr)
    }

    /// `timeout(1)` sends its signal to the command and then to its own process group,
    /// so the copy gets it twice within microseconds: that is one stop, drained cleanly,
    /// not a second signal that exits at once.
    @Test func aSignalThatTimeoutSendsTwiceStopsCleanly() throws {
        let source = try Self.slowPattern()
        defer { source.stop() }
        let folder = try TemporaryDirectory(prefix: "nbdtop-exit")
        defer { folder.remove() }
        let output = folder.file("out.img")
        let copy = try BackgroundCommand(["timeout", "--preserve-status", "-s", "TERM", "1.5", try CommandRunner.nbdtopBinary(),
                                          "copy", "--stats-json", "-", "-C", "4", "-R", "4", "--interval", "100ms",
                                          source.uri, output])
        defer { copy.stop() }
        let status = copy.wait(timeout: .seconds(50))
        #expect(status == 143, "exit status \(String(describing: status)): \(copy.stderr)")
        #expect(copy.stderr.contains("stopped by SIGTERM"), "\(copy.stderr)")
        #expect(!copy.stderr.contains("again: exiting at once"), "\(copy.stderr)")
        try Self.expectDone(copy.stdout, exit: 143)
        try Self.expectCutToReportedPrefix(output, stderr: copy.stderr)
        #expect(source.isRunning, "it disconnected politely: \(source.log)")
    }

    /// nbdtop takes a stop signal within 0.1 s of the first as the same one delivered
    /// twice; a test's second signal must come later to be a second.
    static func waitPastTheSameSignalWindow() {
        Thread.sleep(forTimeInterval: 0.2)
    }

    // MARK: Failures

    /// The source dies mid-copy into a new file: the file is cut to the completed prefix
    /// and the message says how far the copy got.
    @Test func failedCopyIntoNewFileIsCutToTheCompletedPrefix() throws {
        let folder = try TemporaryDirectory(prefix: "nbdtop-exit")
        defer { folder.remove() }
        let output = folder.file("out.img")
        let copy = try Self.copyWithSourceKilled(into: output)
        #expect(copy.stderr.contains("copy failed after "), "says how far it got: \(copy.stderr)")
        #expect(copy.stderr.contains(" of 256.0 MiB ("), "bytes done of the total: \(copy.stderr)")
        try Self.expectDone(copy.stdout, exit: 1)
        try Self.expectCutToReportedPrefix(output, stderr: copy.stderr)
    }

    /// A file that existed before keeps its size, and the message says what to distrust.
    @Test func failedCopyIntoExistingFileLeavesItAsIs() throws {
        let folder = try TemporaryDirectory(prefix: "nbdtop-exit")
        defer { folder.remove() }
        let output = folder.file("old.img")
        try CopyCommandTests.makeFile(output, size: 256 * Self.mib, randomAt: [(0, 4096)])
        let copy = try Self.copyWithSourceKilled(into: output)
        let line = copy.stderr.split(separator: "\n").first { $0.contains("is incomplete") }.map(String.init) ?? ""
        #expect(line.contains(output) && line.contains("left as it is"), "\(copy.stderr)")
        #expect(line.range(of: #"bytes past [0-9]+ may hold old data"#, options: .regularExpression) != nil, "\(copy.stderr)")
        #expect(try ImageCheck.sizes(of: output).size == 256 * Self.mib)
    }

    /// A source that cannot be opened still ends the JSON lines with `done`.
    @Test func openFailureEndsStatsWithDone() throws {
        let folder = try TemporaryDirectory(prefix: "nbdtop-exit")
        defer { folder.remove() }
        let stats = folder.file("stats.jsonl")
        let result = try nbdtop("copy", "--stats-json", stats, "nbd+unix:///?socket=\(folder.file("none.sock"))", "null:")
        #expect(result.status == 1, "\(result.stderr)")
        try Self.expectDone(try String(contentsOfFile: stats, encoding: .utf8), exit: 1)
    }

    // MARK: --stats-json write errors

    /// A full disk: one line on stderr naming the stream; the copy goes on and succeeds.
    @Test func statsJSONOnAFullDiskIsReportedOnce() throws {
        let source = try ServerProcess.nbdkit(["pattern", "64M"], options: ["-r"])
        defer { source.stop() }
        let folder = try TemporaryDirectory(prefix: "nbdtop-exit")
        defer { folder.remove() }
        let output = folder.file("out.img")
        let result = try nbdtop("copy", "--interval", "100ms", "--stats-json", "/dev/full", source.uri, output)
        #expect(result.status == 0, "\(result.stderr)")
        Self.expectOneWriteError(result.stderr, naming: "--stats-json /dev/full")
        #expect(try ImageCheck.sizes(of: output).size == 64 * Self.mib)
        #expect(try ImageCheck.firstPatternMismatch(inFile: output) == nil)
    }

    /// `--stats-json -` into `head -1`: the pipe closes after the first line.
    @Test func statsJSONIntoAClosedPipeIsReportedOnce() throws {
        // 64 MiB at 25 MB/s: head has long gone when the later lines come.
        let source = try ServerProcess.nbdkit(["pattern", "64M", "rate=200000000", "burstiness=0.1"],
                                              filters: ["rate"], options: ["-r"])
        defer { source.stop() }
        let folder = try TemporaryDirectory(prefix: "nbdtop-exit")
        defer { folder.remove() }
        let output = folder.file("out.img"), statusFile = folder.file("status")
        let copy = ShellQuote.command([try CommandRunner.nbdtopBinary(), "copy", "--interval", "100ms", "--stats-json", "-",
                                       source.uri, output])
        let result = try CommandRunner.run(["sh", "-c", "{ \(copy); echo $? > \(ShellQuote.word(statusFile)); } | head -1"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try StatsLog(result.stdout).lines.map(\.event) == ["start"], "\(result.stdout)")
        let status = try String(contentsOfFile: statusFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(status == "0", "nbdtop's exit status: \(status); \(result.stderr)")
        Self.expectOneWriteError(result.stderr, naming: "--stats-json -")
        #expect(try ImageCheck.firstPatternMismatch(inFile: output) == nil)
        #expect(try ImageCheck.sizes(of: output).size == 64 * Self.mib)
    }

    // MARK: Helpers

    /// 256 MiB of pattern at 8 MB/s (half a minute), optionally behind a pause switch.
    static func slowPattern(pause: PauseSwitch? = nil) throws -> ServerProcess {
        try ServerProcess.nbdkit(["pattern", "256M", "rate=64000000", "burstiness=0.1"] + (pause.map { [$0.argument] } ?? []),
                                 filters: (pause == nil ? [] : ["pause"]) + ["rate"], options: ["-r"])
    }

    /// Copies a slow source into `output` and kills the source once bytes move; expects
    /// exit status 1 and returns what nbdtop wrote.
    static func copyWithSourceKilled(into output: String,
                                     sourceLocation: SourceLocation = #_sourceLocation) throws -> (stdout: String, stderr: String) {
        let source = try slowPattern()
        defer { source.stop() }
        let copy = try CopyCommandTests.startedCopy(["-C", "4", "--interval", "100ms", source.uri, output])
        defer { copy.stop() }
        source.signal(SIGKILL)
        let status = copy.wait(timeout: .seconds(30))
        #expect(status == 1, "exit status \(String(describing: status)): \(copy.stderr)", sourceLocation: sourceLocation)
        return (copy.stdout, copy.stderr)
    }

    /// The JSON lines end with a `done` event carrying `exit`.
    static func expectDone(_ text: String, exit: Int32, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let last = try StatsLog(text).lines.last
        #expect(last?.event == "done" && last?.int("exit") == Int(exit), "last line: \(last?.text ?? "none")",
                sourceLocation: sourceLocation)
    }

    /// stderr says the new file holds its first N bytes and was cut to them; it has
    /// exactly N bytes, fewer than the image, and they are the source's.
    static func expectCutToReportedPrefix(_ path: String, stderr: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let pattern = #"destination .* is incomplete: it holds the first ([0-9]+) bytes \([0-9.]+%\); truncated to that"#
        let expression = try NSRegularExpression(pattern: pattern)
        let match = expression.firstMatch(in: stderr, range: NSRange(stderr.startIndex..., in: stderr))
        let prefix = match.flatMap { Range($0.range(at: 1), in: stderr) }.flatMap { UInt64(stderr[$0]) }
        let bytes = try #require(prefix, "no 'holds the first N bytes' line: \(stderr)", sourceLocation: sourceLocation)
        #expect(bytes < 256 * mib, "\(stderr)", sourceLocation: sourceLocation)
        #expect(try ImageCheck.sizes(of: path).size == bytes, "\(stderr)", sourceLocation: sourceLocation)
        #expect(try ImageCheck.firstPatternMismatch(inFile: path) == nil, sourceLocation: sourceLocation)
    }

    /// Exactly one stderr line reports a write error, and it names the stream.
    static func expectOneWriteError(_ stderr: String, naming stream: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let lines = stderr.split(separator: "\n").filter { $0.contains("cannot write") }
        #expect(lines.count == 1 && lines[0].contains(stream), "\(stderr)", sourceLocation: sourceLocation)
    }
}
