import ArgumentParser
import Dashboard
import NBDCopy
#if canImport(Glibc)
import Glibc
#endif

/// `nbdtop demo`: a live transfer shaped so that head-of-line stalls and the gain from
/// adding lanes show within seconds. Needs nbdkit and nothing else.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Watch a live transfer between captive nbdkit servers; press + to add lanes.",
        discussion: """
            The source is a captive nbdkit whose connections answer one request at a time (noparallel \
            filter), each capped at 10 MB/s (rate filter), and where one request in 53 takes 2.5 s: \
            the requests queued behind it on the same connection wait, which is a head-of-line stall. \
            The copy starts with one lane; every lane you add (+) brings another 10 MB/s and keeps \
            moving while another one is stalled. Data goes to null:. Quit with q.
            """
    )

    @Option(help: "Dashboard theme: a name (default, mono, high-contrast, light) or a file path.")
    var theme: String?

    @Option(name: .customLong("stats-json"), help: "Also write JSON lines to PATH.")
    var statsJSON: String?

    /// Bytes each source connection may send per second, in bits as nbdkit's rate filter takes them.
    static let connectionRateBits = "80M"

    /// The source: answers in order per connection, rate-capped, and now and then slow.
    static var sourceCommand: [String] {
        [
            "nbdkit", "--filter=noparallel", "--filter=rate", "eval",
            "get_size=echo 64G",
            // Arguments: pread HANDLE COUNT OFFSET. One 1 MiB request in 53 takes 2.5 s.
            "pread=if [ $(( $4 / 1048576 % 53 )) -eq 7 ]; then sleep 2.5; fi; head -c $3 /dev/zero",
            "can_multi_conn=exit 0", "can_extents=exit 3", "can_write=exit 3",
            "thread_model=echo parallel",
            "serialize=requests", "connection-rate=\(connectionRateBits)", "burstiness=0.1",
        ]
    }

    func run() async throws {
        guard (try? CommandLineTools.find("nbdkit")) != nil else {
            throw ValidationError("the demo needs nbdkit: install it with 'make deps' (or: apt-get install nbdkit)")
        }
        var options = CopyOptions()
        options.connections = 1
        options.requestsPerLane = 4
        options.requestSize = 1 << 20
        options.useExtents = false
        options.stallThreshold = .seconds(1)
        let configuration = CopyConfiguration(
            options: options, source: .captive(Self.sourceCommand), destination: .null, statsJSONPath: statsJSON,
            showProgress: true, interval: .seconds(1), verbose: true, tui: nil, theme: theme,
            hint: "one lane of 10 MB/s: press + to add lanes, - to drop, p to pause, ? for help")
        let status = await (try CopySession(configuration)).run()
        if status != 0 && status != 130 { throw ExitCode(status) }
    }
}

/// Finds programs on PATH.
enum CommandLineTools {
    static func find(_ program: String) throws -> String {
        let path = ProcessEnvironment.current()["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for folder in path.split(separator: ":") where access("\(folder)/\(program)", X_OK) == 0 {
            return "\(folder)/\(program)"
        }
        throw ValidationError("\(program) not found on PATH")
    }
}
