#if canImport(Glibc)
import Glibc
#endif

/// An export's `base:allocation` map as `nbdinfo --map` prints it: runs of one type,
/// coalesced, with nbdinfo's columns, words and JSON, and the `--totals` summary.
struct ExtentMap: Equatable {
    /// One run of extents of the same type.
    struct Run: Equatable {
        var offset: UInt64
        var length: UInt64
        /// The raw `NBD_STATE_*` bits: 1 hole, 2 zero.
        var type: UInt32
    }

    /// The total of one type, for `--totals`.
    struct Total: Equatable {
        var bytes: UInt64
        var type: UInt32
    }

    private(set) var runs: [Run] = []
    let exportSize: UInt64

    init(exportSize: UInt64) {
        self.exportSize = exportSize
    }

    /// The offset the next extent starts at.
    var end: UInt64 { runs.last.map { $0.offset + $0.length } ?? 0 }

    /// Appends the next extent, merged into the last run when it has the same type; what
    /// reaches past the export's end is cut there.
    mutating func append(length: UInt64, type: UInt32) {
        let length = min(length, exportSize - min(end, exportSize))
        guard length > 0 else { return }
        if let last = runs.last, last.type == type {
            runs[runs.count - 1].length += length
        } else {
            runs.append(Run(offset: end, length: length, type: type))
        }
    }

    /// Each type's total, in the order of the types.
    var totals: [Total] {
        var bytes: [UInt32: UInt64] = [:]
        for run in runs { bytes[run.type, default: 0] += run.length }
        return bytes.keys.sorted().map { Total(bytes: bytes[$0]!, type: $0) }
    }

    /// nbdinfo's words for a `base:allocation` type; nil for bits it does not name.
    static func description(of type: UInt32) -> String? {
        switch type {
        case 0: return "data"
        case 1: return "hole"
        case 2: return "zero"
        case 3: return "hole,zero"
        default: return nil
        }
    }

    /// `offset  length  type  description`, one run a line.
    var text: String {
        runs.map { run in
            var line = CFormat.string("%10llu  %10llu  %3u", CUnsignedLongLong(run.offset), CUnsignedLongLong(run.length), run.type)
            if let description = Self.description(of: run.type) { line += "  \(description)" }
            return line + "\n"
        }.joined()
    }

    /// `size  percent%  type  description`, one type a line.
    var totalsText: String {
        totals.map { total in
            var line = CFormat.string("%10llu %5.1f%% %3u", CUnsignedLongLong(total.bytes), percent(total.bytes), total.type)
            if let description = Self.description(of: total.type) { line += " \(description)" }
            return line + "\n"
        }.joined()
    }

    /// nbdinfo's `--map --json` array, written as nbdinfo writes it.
    var json: String {
        let objects = runs.map { run in
            "{ \"offset\": \(run.offset), \"length\": \(run.length), \"type\": \(run.type)"
                + (Self.description(of: run.type).map { ", \"description\": \"\($0)\"" } ?? "") + "}"
        }
        return "[\n" + objects.joined(separator: ",\n") + "\n]\n"
    }

    /// nbdinfo's `--map --totals --json` array.
    var totalsJSON: String {
        let objects = totals.map { total in
            "{ \"size\": \(total.bytes), \"percent\": \(CFormat.string("%g", percent(total.bytes))), \"type\": \(total.type)"
                + (Self.description(of: total.type).map { ", \"description\": \"\($0)\"" } ?? "") + " }"
        }
        return "[\n" + objects.joined(separator: ",\n") + "\n]\n"
    }

    private func percent(_ bytes: UInt64) -> Double {
        exportSize == 0 ? 0 : 100.0 * Double(bytes) / Double(exportSize)
    }
}

/// printf-style formatting from the C library, where a column must match a C tool's
/// output digit for digit (`%5.1f` and `%g` round as printf does).
enum CFormat {
    static func string(_ format: String, _ arguments: any CVarArg...) -> String {
        withVaList(arguments) { list in
            var buffer = [CChar](repeating: 0, count: 128)
            _ = buffer.withUnsafeMutableBufferPointer { vsnprintf($0.baseAddress, $0.count, format, list) }
            return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
    }
}
