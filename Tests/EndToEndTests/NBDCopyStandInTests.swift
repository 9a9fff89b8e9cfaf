import Foundation
import NBDTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// nbdtop run as `nbdcopy` through a symlink first on PATH, the way virt-v2v would find
/// it, against real nbdkit servers and the installed nbdcopy (libnbd 1.14) as the oracle
/// for wording and exit statuses.
///
/// Serialized: the machine has 2 cores.
@Suite(.serialized, .timeLimit(.minutes(3))) struct NBDCopyStandInTests {
    // MARK: virt-v2v's copies

    /// The option sets virt-v2v passes after SRC and DST.
    struct Form: Sendable, CustomTestStringConvertible {
        var options: [String]
        var testDescription: String { options.joined(separator: " ") }
        var progressDescriptor: Bool { options.contains("--progress=3") }
        var progressBar: Bool { options.contains("--progress") }
    }

    static let virtV2VForms = [
        Form(options: ["--request-size=4194304", "--requests=8", "--flush"]),
        Form(options: ["--request-size=4194304", "--requests=8", "--flush", "--progress=3"]),
        Form(options: ["--request-size=4194304", "--requests=8", "--flush", "--allocated"]),
        Form(options: ["--request-size=4194304", "--requests=8", "--flush", "--progress=3", "--allocated"]),
        Form(options: ["--request-size=4194304", "--requests=8", "--flush", "--progress"]),
    ]

    /// sparse-random into the same seed fails any write that differs, so exit 0 with every
    /// data byte written (the destination's log) is an integrity check.
    @Test(arguments: virtV2VForms)
    func virtV2VFormCopiesEveryByte(form: Form) throws {
        let standIn = try StandIn()
        defer { standIn.remove() }
        let image = ["sparse-random", "128M", "seed=77", "percent=30", "runlength=1048576"]
        let source = try ServerProcess.nbdkit(image)
        defer { source.stop() }
        let log = standIn.folder.file("destination.log")
        let destination = try ServerProcess.nbdkit(image + ["logfile=\(log)"], filters: ["log"])
        defer { destination.stop() }
        let result = try standIn.run([source.uri, destination.uri] + form.options, redirections: "3>progress")
        #expect(result.status == 0, "\(result.stderr)\n\(destination.log)")
        #expect(try Self.bytesWritten(log: log) >= Self.dataBytes(source.uri))
        if form.progressDescriptor {
            let lines = standIn.read("progress").split(separator: "\n", omittingEmptySubsequences: false).dropLast()
            let percents = lines.map { line in line.wholeMatch(of: /(\d{1,3})\/100/).flatMap { Int($0.1) } }
            #expect(!percents.contains(nil) && !lines.isEmpty, "well-formed N/100 lines: \(lines)")
            let values = percents.compactMap { $0 }
            #expect(values.first == 0 && values.last == 100 && values == values.sorted(), "\(values)")
        } else {
            #expect(standIn.read("progress").isEmpty)
        }
        if form.progressBar {
            let frames = result.stderr.split(whereSeparator: { $0 == "\r" || $0 == "\n" })
            #expect(frames.last == "█ 100% [\(String(repeating: "*", count: 40))]", "\(result.stderr)")
            #expect(frames.allSatisfy { $0.wholeMatch(of: /. [ \d]{3}% \[[*-]{40}\]/) != nil }, "\(result.stderr)")
            #expect(result.stderr.hasSuffix("\n"))
        } else {
            #expect(result.stderr.isEmpty, "\(result.stderr)")
        }
    }

    /// On a terminal, unlike `nbdtop copy`, the stand-in never opens the dashboard: the
    /// pane stays on the normal screen for the whole copy, which shows nbdcopy's bar.
    @Test func noDashboardOnATerminal() throws {
        let source = try ServerProcess.nbdkit(["pattern", "32M", "rate=160M", "burstiness=0.1"], filters: ["rate"],
                                              options: ["-r"])
        defer { source.stop() }
        let standIn = try StandIn()
        defer { standIn.remove() }
        let terminal = try TmuxSession(columns: 100, rows: 30)
        defer { terminal.stop() }
        try terminal.start(script: """
            export TERM=xterm-256color LANG=C.UTF-8 PATH=\(ShellQuote.word(standIn.searchPath))
            cd \(ShellQuote.word(standIn.folder.path)) || exit 99
            nbdcopy --no-extents \(ShellQuote.word(source.uri)) null: -p
            echo $? > status

            """)
        var sawAlternateScreen = false
        let deadline = ContinuousClock.now + .seconds(60)
        while standIn.read("status").isEmpty && ContinuousClock.now < deadline {
            if try terminal.alternateScreenOn { sawAlternateScreen = true }
            usleep(50_000)
        }
        #expect(!sawAlternateScreen, "the dashboard's alternate screen was opened")
        let screen = try terminal.capture(history: true)
        #expect(standIn.read("status") == "0\n", "\(screen)")
        #expect(screen.contains("█ 100% ["), "\(screen)")
    }

    // MARK: Command line

    @Test func versionNamesNbdtop() throws {
        let standIn = try StandIn()
        defer { standIn.remove() }
        let result = try standIn.run(["-V"])
        #expect(result.status == 0)
        let lines = result.stdout.split(separator: "\n")
        #expect(lines.count == 2 && lines[0].wholeMatch(of: /nbdcopy \(nbdtop\) \d+\.\d+\.\d+/) != nil, "\(result.stdout)")
        #expect(try standIn.run(["--version"]).stdout == result.stdout)
    }

    /// bash completion reads these lists: the installed nbdcopy's, less the options the
    /// stand-in refuses (a later nbdcopy's --blkhash).
    @Test(arguments: ["--long-options", "--short-options"])
    func optionListsMatchNbdcopy(listing: String) throws {
        let standIn = try StandIn()
        defer { standIn.remove() }
        let ours = try standIn.run([listing])
        let theirs = try StandIn.runReal([listing])
        #expect(ours.status == 0 && theirs.status == 0)
        let expected = theirs.stdout.split(separator: "\n").filter { !$0.hasPrefix("--blkhash") }
        #expect(ours.stdout.split(separator: "\n") == expected, "\(ours.stdout)")
    }

    /// Mistakes are reported in nbdcopy's words, with its exit status (1).
    @Test(arguments: [
        ["--bogus", "a", "b"], ["-x"], ["-C"], ["--conn"], ["--re=4", "a", "b"], ["--flush=1"],
        ["-C", "0", "a", "b"], ["--requests=x", "a", "b"], ["--request-size=100", "a", "b"], ["-S", "100", "a", "b"],
        ["--progress=x", "a", "b"], ["only-one"], [],
    ])
    func mistakesAreReportedAsNbdcopyDoes(arguments: [String]) throws {
        let standIn = try StandIn()
        defer { standIn.remove() }
        let ours = try standIn.run(arguments)
        let theirs = try StandIn.runReal(arguments)
        #expect(ours.status == 1 && theirs.status == 1, "\(ours.stderr)")
        #expect(ours.stderr.split(separator: "\n").first == theirs.stderr.split(separator: "\n").first, "\(ours.stderr)")
        #expect(ours.stdout.isEmpty)
    }

    @Test(arguments: ["--blkhash", "--blkhash=sha256", "--blkhash-file=sums"])
    func blkhashIsRefusedByName(option: String) throws {
        let source = try ServerProcess.nbdkit(["memory", "1M"])
        defer { source.stop() }
        let standIn = try StandIn()
        defer { standIn.remove() }
        let result = try standIn.run([source.uri, "null:", option])
        #expect(result.status == 1)
        #expect(result.stderr.hasPrefix("nbdcopy: --blkhash") && result.stderr.contains("not supported"), "\(result.stderr)")
    }

    /// Lanes as nbdcopy counts connections: `-C`, at most `-T` (one per core by default),
    /// one with `--synchronous`. The source is slow enough for every lane to join.
    @Test(arguments: [
        (["-C", "4"], min(4, sysconf(Int32(_SC_NPROCESSORS_ONLN)))),
        (["-C", "4", "-T", "4"], 4),
        (["--synchronous", "-C", "4", "-T", "4"], 1),
    ])
    func lanesFollowConnectionsAndThreads(options: [String], lanes: Int) throws {
        let source = try ServerProcess.nbdkit(["sparse-random", "64M", "seed=5", "percent=100",
                                               "connection-rate=200M", "burstiness=0.1"], filters: ["rate"])
        defer { source.stop() }
        let standIn = try StandIn()
        defer { standIn.remove() }
        let result = try standIn.run(["-v", source.uri, "null:"] + options)
        #expect(result.status == 0, "\(result.stderr)")
        let added = result.stderr.matches(of: /lane (\d+) added/).compactMap { Int($0.1) }
        #expect(added.max() == lanes, "\(result.stderr)")
    }

    /// Options after the endpoints, and a `[ ... ]` server whose own flags need no `--`:
    /// the file matches what the real nbdcopy makes from the same server.
    @Test func optionsAfterEndpointsAndCaptiveServer() throws {
        let standIn = try StandIn()
        defer { standIn.remove() }
        let ours = standIn.folder.file("ours.img"), theirs = standIn.folder.file("theirs.img")
        let result = try standIn.run(["[", "nbdkit", "-r", "pattern", "8M", "]", ours, "-p", "--flush"])
        #expect(result.status == 0, "\(result.stderr)")
        let reference = try StandIn.runReal(["--", "[", "nbdkit", "-r", "pattern", "8M", "]", theirs])
        try #require(reference.status == 0, "\(reference.stderr)")
        #expect(FileManager.default.contentsEqual(atPath: ours, andPath: theirs))
    }

    // MARK: Character devices

    /// `/dev/null` is a stream destination and `/dev/zero` a stream source, for the
    /// stand-in and for `nbdtop copy` alike; zeroes without end overrun the destination,
    /// which fails the copy as it fails nbdcopy's.
    @Test func characterDevicesAreStreams() throws {
        let source = try ServerProcess.nbdkit(["pattern", "8M"], options: ["-r"])
        defer { source.stop() }
        let destination = try ServerProcess.nbdkit(["memory", "8M"])
        defer { destination.stop() }
        let standIn = try StandIn()
        defer { standIn.remove() }
        let toNull = try standIn.run(["--no-extents", source.uri, "/dev/null"])
        #expect(toNull.status == 0, "\(toNull.stderr)")
        let ownToNull = try nbdtop("copy", "--no-tui", "--no-extents", source.uri, "/dev/null")
        #expect(ownToNull.status == 0, "\(ownToNull.stderr)")
        let fromZero = try standIn.run(["/dev/zero", destination.uri])
        #expect(fromZero.status == 1 && fromZero.stderr.contains("beyond the end"), "\(fromZero.stderr)")
        let theirs = try StandIn.runReal(["/dev/zero", destination.uri])
        #expect(theirs.status == 1, "\(theirs.stderr)")
    }

    // MARK: Support

    /// The bytes the destination was sent in WRITE requests, from nbdkit's log filter.
    static func bytesWritten(log path: String) throws -> UInt64 {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        return text.matches(of: /Write id=\d+ offset=0x[0-9a-f]+ count=0x([0-9a-f]+)/)
            .compactMap { UInt64($0.1, radix: 16) }.reduce(0, +)
    }

    /// The bytes of data (not hole or zero) in `uri`, from `nbdinfo --map --totals`.
    static func dataBytes(_ uri: String) throws -> UInt64 {
        let result = try peer("nbdinfo", "--map", "--totals", uri)
        try #require(result.status == 0, "\(result.stderr)")
        let data = result.stdout.split(separator: "\n").map { $0.split(separator: " ") }.first { $0.count >= 3 && $0[2] == "0" }
        return try #require(data.flatMap { UInt64($0[0]) }, "\(result.stdout)")
    }
}

/// A folder with `nbdcopy`, a symlink to the nbdtop under test, put first on PATH.
struct StandIn {
    let folder: TemporaryDirectory

    init() throws {
        folder = try TemporaryDirectory(prefix: "nbdcopy-stand-in")
        guard symlink(try CommandRunner.nbdtopBinary(), folder.file("nbdcopy")) == 0 else {
            folder.remove()
            throw TestSupportError("cannot make the nbdcopy symlink: \(String(cString: strerror(errno)))")
        }
    }

    /// PATH with the symlink's folder first.
    var searchPath: String {
        folder.path + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
    }

    /// Runs `nbdcopy ARGUMENTS` as a program would, found on PATH, in the folder;
    /// `redirections` are shell ones such as `3>progress`.
    func run(_ arguments: [String], redirections: String = "") throws -> CommandResult {
        try Self.shell("cd \(ShellQuote.word(folder.path)) && exec nbdcopy \(ShellQuote.command(arguments)) \(redirections)",
                       path: searchPath)
    }

    /// Runs the installed nbdcopy the same way, so that it too is named `nbdcopy`.
    static func runReal(_ arguments: [String]) throws -> CommandResult {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        return try shell("exec nbdcopy \(ShellQuote.command(arguments))", path: path)
    }

    private static func shell(_ script: String, path: String) throws -> CommandResult {
        try CommandRunner.run(["sh", "-c", script], timeout: .seconds(90), environment: ["PATH": path])
    }

    func read(_ name: String) -> String {
        (try? String(contentsOfFile: folder.file(name), encoding: .utf8)) ?? ""
    }

    func remove() { folder.remove() }
}
