import NBD

/// What must stay the same about an NBD export for connections to it to be interchangeable:
/// size, transmission flags (read-only, flush, zero, multi-conn...), block sizes, and
/// whether structured replies and block status were negotiated.
struct ExportFacts: Equatable {
    var size: UInt64
    var flags: NBDTransmissionFlags
    var blockSize: NBDBlockSize?
    var structuredReplies: Bool
    var canBlockStatus: Bool

    init(_ info: NBDExportInfo) {
        size = info.size
        flags = info.flags
        blockSize = info.blockSize
        structuredReplies = info.structuredReplies
        canBlockStatus = info.canBlockStatus
    }

    /// What differs in `self` from `earlier`, in words; nil when nothing does.
    func change(from earlier: ExportFacts) -> String? {
        var changes: [String] = []
        if size != earlier.size { changes.append("size was \(earlier.size) bytes, now \(size)") }
        if flags != earlier.flags {
            let gone = earlier.flags.subtracting(flags).names, added = flags.subtracting(earlier.flags).names
            changes.append("flags changed (" + (gone.map { "-" + $0 } + added.map { "+" + $0 }).joined(separator: " ") + ")")
        }
        if blockSize != earlier.blockSize {
            changes.append("block sizes were \(Self.describe(earlier.blockSize)), now \(Self.describe(blockSize))")
        }
        if structuredReplies != earlier.structuredReplies || canBlockStatus != earlier.canBlockStatus {
            changes.append("structured replies or block status changed")
        }
        return changes.isEmpty ? nil : changes.joined(separator: "; ")
    }

    private static func describe(_ blockSize: NBDBlockSize?) -> String {
        guard let blockSize else { return "not announced" }
        return "\(blockSize.minimum)/\(blockSize.preferred)/\(blockSize.maximum)"
    }
}
