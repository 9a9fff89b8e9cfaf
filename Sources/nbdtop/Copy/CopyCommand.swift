import ArgumentParser
import NBD
import NBDCopy
import NIOCore
import NIOPosix

/// `nbdtop copy`: copy a disk image between NBD endpoints, files, pipes and captive servers.
struct CopyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "copy",
        abstract: "Copy a disk image over several connections at once.",
        discussion: """
            SRC and DST are each an NBD URI (nbd://HOST[:PORT]/EXPORT, nbd+unix:///EXPORT?socket=PATH; \
            nbds:// and nbds+unix:// for TLS, see 'nbdtop info --help'), \
            a file or block device, null: (destination only: discard), - (stdin or stdout), or a captive \
            server '[ CMD ARGS... ]' that nbdtop starts with socket activation and connects to as many times \
            as there are lanes (put '--' before it). Flags follow nbdcopy where it has one.

            While it runs, SIGUSR1 adds a lane and SIGUSR2 drops the newest one. Ctrl-C, SIGTERM and \
            SIGHUP stop cleanly: the requests in flight finish, the connections close politely, the \
            terminal is restored; a second one (0.1 s or more after the first: timeout(1) sends its signal \
            twice) exits at once. With the dashboard up, SIGHUP means the \
            terminal went away: the copy goes on without the dashboard, to its end. --stats-json always \
            ends with a done event carrying the exit status.

            Every copy has a control socket (JSON lines: its figures out, commands such as add_lane in), \
            $XDG_RUNTIME_DIR/nbdtop/PID.sock or /tmp/nbdtop-UID/PID.sock, where it leaves PID.result.json \
            when it ends; 'nbdtop ls' lists them. --background starts the copy detached from the \
            terminal and prints its pid and control socket once it has started.

            A copy that fails or is stopped says how far it got: the destination holds every byte \
            below a completed prefix. A destination file that nbdtop created is truncated to that \
            prefix, so its size shows how far it got; a file that existed before, a block device or an \
            NBD export is left as it is, and bytes past the prefix may hold old data.

            Exit status: 0 the whole image was copied (and flushed), 1 the copy failed, 2 usage error, \
            130 Ctrl-C (SIGINT) or a control client's stop, 143 SIGTERM, 129 SIGHUP (without the dashboard).
            """
    )

    @Option(name: [.customShort("C"), .customLong("connections")],
            help: ArgumentHelp("Lanes (connection pairs): auto tunes the count while copying (from 4, up to --max-connections), N fixes it.",
                               valueName: "auto|n"))
    var connections = LaneCount.auto

    @Option(name: .customLong("max-connections"), help: "With -C auto: the most lanes tuning opens.")
    var maxConnections = 16

    @Option(name: [.customShort("R"), .customLong("requests")],
            help: "Requests in flight per lane (with --request-size auto, at most 32 until it has taken its first look at the server, well within a second).")
    var requests = 64

    @Option(name: .customLong("request-size"),
            help: ArgumentHelp("Bytes per request: auto tunes it while copying (from 256K), a size from 512 to 32M (e.g. 1M) fixes it.",
                               valueName: "auto|size"))
    var requestSize = RequestSizeSetting.auto

    @Option(name: .customLong("queue-size"),
            help: ArgumentHelp("Bytes of data in flight per lane at most; one request always fits.", valueName: "size"))
    var queueSize = ByteCount(bytes: 16 << 20)

    @Option(name: [.customShort("S"), .customLong("sparse")],
            help: ArgumentHelp("Zero-detection block size, 512 up to the request size; 0 turns it off (default: 4096, or the request size if smaller).",
                               valueName: "size"))
    var sparse: ByteCount?

    @Flag(help: "Keep zeroed ranges allocated on the destination.")
    var allocated = false

    @Flag(name: [.customLong("destination-is-zero"), .customLong("target-is-zero")],
          help: "The destination already reads as zero: skip zero ranges.")
    var destinationIsZero = false

    @Flag(name: .customLong("no-extents"), help: "Do not ask the source which ranges are zero.")
    var noExtents = false

    @Flag(inversion: .prefixedNo, help: "Flush the destination at the end (the default).")
    var flush = true

    @Option(help: "Times a request the server failed is tried again, on any lane.")
    var retries = 0

    @Option(help: ArgumentHelp("Re-open a lane's broken connection, with backoff, for up to this long (e.g. 30s, 5m).",
                               valueName: "duration"))
    var reconnect: TimeSpan?

    @Option(help: ArgumentHelp("With --reconnect: flush the destination after this many bytes or this long, whichever comes first.",
                               valueName: "size,duration"))
    var checkpoint = CheckpointPolicy.standard

    @OptionGroup var thresholds: ThresholdOptions

    @Flag(name: [.customShort("p"), .customLong("progress")], help: "Show progress on stderr.")
    var progress = false

    @OptionGroup var recording: RecordingOptions

    @OptionGroup var display: DisplayOptions

    @Flag(name: [.customShort("v"), .customLong("verbose")], help: "Log lanes, retries and stalls to stderr.")
    var verbose = false

    @OptionGroup var controlSocket: ControlOptions

    @Flag(help: "Run detached from the terminal, in a session of its own; print the pid and control socket once started.")
    var background = false

    @Option(help: ArgumentHelp("With --background: where the copy's output goes (appended); nowhere by default.",
                               valueName: "file"))
    var log: String?

    /// Set in the child `--background` starts: the pipe to tell the parent the copy started.
    @Option(name: .customLong("ready-fd"), help: .hidden)
    var readyDescriptor: Int32?

    @Argument(parsing: .captureForPassthrough, help: "SRC DST")
    var endpoints: [String] = []

    func validate() throws {
        if PassthroughHelp.isRequested(in: endpoints) { throw CleanExit.helpRequest(self) }
        guard maxConnections >= 1 else { throw ValidationError("--max-connections must be at least 1") }
        guard requests >= 1 else { throw ValidationError("--requests must be at least 1") }
        guard retries >= 0 else { throw ValidationError("--retries must not be negative") }
        _ = try copyOptions()
        let (source, destination) = try specs()
        if log != nil && !background && readyDescriptor == nil { throw ValidationError("--log needs --background") }
        if background {
            if display.tui == true { throw ValidationError("--background has no terminal for --tui") }
            if source == .pipe || destination == .pipe {
                throw ValidationError("--background has no stdin or stdout for a '-' endpoint")
            }
        }
    }

    func copyOptions() throws -> CopyOptions {
        var options = CopyOptions()
        switch connections {
        case .auto:
            options.autoLanes = true
            options.connections = min(LaneCount.autoStart, maxConnections)
        case .fixed(let count):
            options.connections = count
        }
        options.maximumAutoLanes = maxConnections
        options.requestsPerLane = requests
        switch requestSize {
        case .auto:
            options.autoRequestSize = true
        case .fixed(let size):
            guard size.bytes >= 512, size.bytes <= 32 << 20 else {
                throw ValidationError("--request-size \(Units.sizeText(size.bytes)) must be auto or a size from 512 to 32M")
            }
            options.requestSize = size.bytes
        }
        // Zero detection works within a request: with auto sizes, within the smallest. Only
        // a block size given explicitly can be wrong: the default follows a small request size.
        let smallestRequest = options.autoRequestSize ? RequestSizeLadder.startingSize : options.requestSize
        let granularity = sparse?.bytes ?? min(4096, smallestRequest)
        guard granularity == 0 || (granularity >= 512 && granularity <= smallestRequest) else {
            throw ValidationError("--sparse \(Units.sizeText(granularity)) must be 0 or from 512 up to the request size (\(Units.sizeText(smallestRequest)))")
        }
        options.sparseGranularity = granularity
        options.allocated = allocated
        options.destinationIsZero = destinationIsZero
        options.useExtents = !noExtents
        options.flush = flush
        options.retries = retries
        options.queueSize = max(1, queueSize.bytes)
        options.reconnect = reconnect?.duration
        options.checkpointBytes = checkpoint.bytes
        options.checkpointInterval = checkpoint.interval
        options.stallThreshold = thresholds.stallThreshold?.duration
        options.slowThreshold = thresholds.slowThreshold?.duration
        return options
    }

    func specs() throws -> (source: EndpointSpec, destination: EndpointSpec) {
        let words = endpoints.first == "--" ? Array(endpoints.dropFirst()) : endpoints
        let specs: [EndpointSpec]
        do {
            specs = try EndpointSpec.parseAll(words)
        } catch {
            throw ValidationError("\(error)")
        }
        guard specs.count == 2 else {
            throw ValidationError("expected SRC and DST, got \(specs.count) endpoint\(specs.count == 1 ? "" : "s")")
        }
        if specs[1] == .pipe && recording.writesToStdout {
            throw ValidationError("--stats-json - and a destination of - would both write to stdout")
        }
        return (specs[0], specs[1])
    }

    func configuration() throws -> CopyConfiguration {
        let (source, destination) = try specs()
        return CopyConfiguration(options: try copyOptions(), source: source, destination: destination,
                                 statsJSONPath: recording.statsJSON, showProgress: progress, interval: recording.interval.duration,
                                 verbose: verbose, tui: display.tui, theme: display.theme,
                                 control: controlSocket.setting,
                                 readyDescriptor: readyDescriptor, metrics: recording.metrics)
    }

    func run() async throws {
        if background {
            let status = try Background.start(arguments: Self.argumentsForBackground(), log: log)
            if status != 0 { throw ExitCode(status) }
            return
        }
        let session = try CopySession(try configuration())
        let status = await session.run()
        if status != 0 { throw ExitCode(status) }
    }

    /// This command line's arguments after `copy`, without `--background` (which comes
    /// before SRC, so it is the first one: a captive server's own arguments stay whole).
    private static func argumentsForBackground() -> [String] {
        var arguments = Array(CommandLine.arguments.drop { $0 != "copy" }.dropFirst())
        if let flag = arguments.firstIndex(of: "--background") { arguments.remove(at: flag) }
        return arguments
    }
}
