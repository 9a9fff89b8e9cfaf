/// One option of nbdcopy's command line, as libnbd 1.14 to 1.24 define it.
///
/// The order of `all` is the order `--long-options` and `--short-options` print them in,
/// which is nbdcopy's: bash completion reads those lists.
enum NBDCopyOption: CaseIterable, Equatable, Sendable {
    case help
    case longOptions
    case shortOptions
    case allocated
    case blkhash
    case blkhashFile
    case connections
    case destinationIsZero
    case flush
    case noExtents
    case progress
    case queueSize
    case requestSize
    case requests
    case sparse
    case synchronous
    case targetIsZero
    case threads
    case verbose
    case version

    /// Whether an option takes a value: `--flush`; `-C N`, `--connections=N` or
    /// `--connections N`; `--progress` or `--progress=FD` (never `--progress FD`).
    enum Argument: Equatable, Sendable {
        case none
        case required
        case optional
    }

    var longName: String {
        switch self {
        case .help: return "help"
        case .longOptions: return "long-options"
        case .shortOptions: return "short-options"
        case .allocated: return "allocated"
        case .blkhash: return "blkhash"
        case .blkhashFile: return "blkhash-file"
        case .connections: return "connections"
        case .destinationIsZero: return "destination-is-zero"
        case .flush: return "flush"
        case .noExtents: return "no-extents"
        case .progress: return "progress"
        case .queueSize: return "queue-size"
        case .requestSize: return "request-size"
        case .requests: return "requests"
        case .sparse: return "sparse"
        case .synchronous: return "synchronous"
        case .targetIsZero: return "target-is-zero"
        case .threads: return "threads"
        case .verbose: return "verbose"
        case .version: return "version"
        }
    }

    var shortName: Character? {
        switch self {
        case .connections: return "C"
        case .progress: return "p"
        case .requests: return "R"
        case .sparse: return "S"
        case .threads: return "T"
        case .verbose: return "v"
        case .version: return "V"
        default: return nil
        }
    }

    /// The argument of the long form; a short option with an optional argument (`-p`)
    /// takes none, as in nbdcopy.
    var argument: Argument {
        switch self {
        case .connections, .queueSize, .requestSize, .requests, .sparse, .threads, .blkhashFile: return .required
        case .progress, .blkhash: return .optional
        default: return .none
        }
    }

    /// Why the stand-in cannot honour this option, or nil when it can.
    var refusal: String? {
        switch self {
        case .blkhash, .blkhashFile:
            return "--\(longName) is not supported: nbdtop cannot compute nbdcopy's block hash (blkhash) of the image yet"
        default:
            return nil
        }
    }

    /// What bash completion is offered: the options the stand-in honours, without the two
    /// that print these lists, as every libguestfs tool does.
    static var longOptionList: [String] {
        allCases.filter { $0.refusal == nil && $0 != .longOptions && $0 != .shortOptions }.map { "--\($0.longName)" }
    }

    static var shortOptionList: [String] {
        allCases.compactMap { option in option.shortName.map { "-\($0)" } }
    }
}
