/// A JSON value that keeps object keys in the order they were given.
///
/// Scripts diff our output against nbdinfo's and humans read it, so key order is part of
/// the contract; Foundation's encoder does not keep it. `parse(_:)` reads one back.
public enum JSONValue: Equatable, Sendable {
    case string(String)
    case int(Int64)
    case uint(UInt64)
    case double(Double)
    case bool(Bool)
    case null
    case array([JSONValue])
    case object([(String, JSONValue)])
    /// JSON text encoded earlier (a JSON line), written as it is: lets a message embed
    /// lines already sent without encoding them again. Never produced by `parse(_:)`.
    case raw(String)

    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool { lhs.compact == rhs.compact }

    /// One line, no spaces: for JSON lines.
    public var compact: String {
        var out = ""
        write(into: &out, indent: nil, level: 0)
        return out
    }

    /// Indented with tabs, one key per line, as nbdinfo prints.
    public var pretty: String {
        var out = ""
        write(into: &out, indent: "\t", level: 0)
        return out
    }

    private func write(into out: inout String, indent: String?, level: Int) {
        switch self {
        case .string(let text): Self.writeString(text, into: &out)
        case .int(let value): out += String(value)
        case .uint(let value): out += String(value)
        case .double(let value):
            out += value.isFinite ? String(value) : "null"
        case .bool(let value): out += value ? "true" : "false"
        case .null: out += "null"
        case .raw(let text): out += text
        case .array(let items):
            writeContainer("[", "]", items.map { (nil, $0) }, into: &out, indent: indent, level: level)
        case .object(let members):
            writeContainer("{", "}", members.map { ($0.0, $0.1) }, into: &out, indent: indent, level: level)
        }
    }

    private func writeContainer(_ open: String, _ close: String, _ items: [(String?, JSONValue)],
                                into out: inout String, indent: String?, level: Int) {
        out += open
        guard !items.isEmpty else { out += close; return }
        let newline = indent == nil ? "" : "\n"
        let pad = indent.map { String(repeating: $0, count: level + 1) } ?? ""
        for (index, (key, value)) in items.enumerated() {
            out += index == 0 ? newline : "," + newline
            out += pad
            if let key {
                Self.writeString(key, into: &out)
                out += indent == nil ? ":" : ": "
            }
            value.write(into: &out, indent: indent, level: level + 1)
        }
        out += newline + (indent.map { String(repeating: $0, count: level) } ?? "") + close
    }

    private static func writeString(_ text: String, into out: inout String) {
        out += "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }
}
