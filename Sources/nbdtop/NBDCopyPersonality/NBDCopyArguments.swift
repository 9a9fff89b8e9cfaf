import NBDCopy

/// nbdcopy's settings as its command line gives them, with nbdcopy's defaults, and how
/// they become an nbdtop copy.
struct NBDCopyArguments: Equatable {
    var allocated = false
    var connections = 4
    var destinationIsZero = false
    /// nbdcopy flushes only when asked; `nbdtop copy` flushes by default.
    var flush = false
    var useExtents = true
    var progress = false
    /// `--progress=FD`: `N/100` lines to this descriptor instead of the bar on stderr.
    var progressDescriptor: Int32?
    var queueSizeBytes: UInt64 = 16 << 20
    var requestSizeBytes: UInt64 = 256 << 10
    var requests = 64
    var sparseBytes: UInt64 = 4096
    var synchronous = false
    /// `-T`: 0 is nbdcopy's default, one thread per CPU core.
    var threads = 0
    var verbose = false
    /// SOURCE and DESTINATION words, `[ ... ]` included.
    var operands: [String] = []

    /// A value nbdcopy would refuse, worded as nbdcopy words it ("--requests: could not parse: 0").
    struct InvalidValue: Error, Equatable {
        var message: String
    }

    /// Takes one option's value; the options that print and exit are not settings.
    mutating func apply(_ option: NBDCopyOption, value: String?) throws(InvalidValue) {
        let name = "--\(option.longName)"
        switch option {
        case .help, .longOptions, .shortOptions, .version:
            break
        case .blkhash, .blkhashFile:
            throw InvalidValue(message: option.refusal ?? name)
        case .allocated: allocated = true
        case .destinationIsZero, .targetIsZero: destinationIsZero = true
        case .flush: flush = true
        case .noExtents: useExtents = false
        case .synchronous: synchronous = true
        case .verbose: verbose = true
        case .connections: connections = try Self.count(value, name, allowZero: false)
        case .requests: requests = try Self.count(value, name, allowZero: false)
        case .threads: threads = try Self.count(value, name, allowZero: true)
        case .progress:
            progress = true
            // A later -p keeps the descriptor an earlier --progress=FD gave, as in nbdcopy.
            if let value {
                guard let descriptor = Int32(value), descriptor >= 0 else {
                    throw InvalidValue(message: "\(name): could not parse: \(value)")
                }
                progressDescriptor = descriptor
            }
        case .queueSize:
            queueSizeBytes = try Self.size(value, name)
        case .requestSize:
            let bytes = try Self.size(value, name)
            guard bytes >= 4096, bytes <= 32 << 20, bytes.nonzeroBitCount == 1 else {
                throw InvalidValue(message: "\(name): must be a power of 2 within 4096-\(32 << 20)")
            }
            requestSizeBytes = bytes
        case .sparse:
            let bytes = try Self.size(value, name)
            guard bytes == 0 || (bytes >= 512 && bytes.nonzeroBitCount == 1) else {
                throw InvalidValue(message: "\(name): must be a power of 2 and >= 512")
            }
            sparseBytes = bytes
        }
    }

    /// A decimal count, as nbdcopy's `%u`.
    private static func count(_ value: String?, _ name: String, allowZero: Bool) throws(InvalidValue) -> Int {
        guard let value, let number = UInt32(value), allowZero || number > 0 else {
            throw InvalidValue(message: "\(name): could not parse: \(value ?? "")")
        }
        return Int(number)
    }

    /// Bytes: a decimal number as nbdcopy takes it, or with a K, M or G suffix.
    private static func size(_ value: String?, _ name: String) throws(InvalidValue) -> UInt64 {
        guard let value, let bytes = Units.parseSize(value), bytes <= UInt32.max else {
            throw InvalidValue(message: "\(name): could not parse: \(value ?? "")")
        }
        return bytes
    }

    /// The lanes nbdcopy would use: `-C`, but no more than `-T` threads (by default one
    /// per CPU core, so `-C 4` alone gives 2 lanes on a 2-core machine, as nbdcopy does),
    /// and one with `--synchronous` or a `[ ... ]` server, whose multi-conn nbdcopy never
    /// uses. The engine then caps it by what the endpoints allow (multi-conn, pipes).
    func lanes(cpuCores: Int, hasCaptiveServer: Bool) -> Int {
        if synchronous || hasCaptiveServer { return 1 }
        let threadCount = threads == 0 ? max(1, cpuCores) : threads
        return max(1, min(connections, threadCount))
    }

    /// The copy these arguments ask for; throws `EndpointSpecError` for bad endpoints.
    func configuration(cpuCores: Int) throws -> CopyConfiguration {
        let specs = try EndpointSpec.parseAll(operands)
        guard specs.count == 2 else { throw NBDCopyUsageError() }
        let hasCaptiveServer = specs.contains { if case .captive = $0 { return true } else { return false } }
        var options = CopyOptions()
        options.connections = lanes(cpuCores: cpuCores, hasCaptiveServer: hasCaptiveServer)
        // --synchronous: one request at a time, as libnbd's blocking calls make them.
        options.requestsPerLane = synchronous ? 1 : requests
        options.requestSize = requestSizeBytes
        // nbdtop scans for zeroes within a request; a larger -S would find nothing smaller
        // than a request, which a request-sized scan finds too.
        options.sparseGranularity = min(sparseBytes, requestSizeBytes)
        options.allocated = allocated
        options.destinationIsZero = destinationIsZero
        options.useExtents = useExtents
        options.flush = flush
        options.queueSize = max(queueSizeBytes, 1)
        var configuration = CopyConfiguration(options: options, source: specs[0], destination: specs[1],
                                              statsJSONPath: nil, showProgress: progress, verbose: verbose, tui: false)
        if let progressDescriptor {
            configuration.progressDisplay = ProgressDescriptor(descriptor: progressDescriptor)
        } else {
            configuration.progressDisplay = NBDCopyProgressBar()
        }
        return configuration
    }
}

/// The command line does not name exactly one SOURCE and one DESTINATION: nbdcopy then
/// prints its usage on stderr.
struct NBDCopyUsageError: Error {}
