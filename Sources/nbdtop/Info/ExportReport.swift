import Control
import NBD
import Telemetry

/// What `nbdtop info` reports about one export, as JSON (nbdinfo's keys) or as text.
struct ExportReport {
    let uri: NBDURI
    let info: NBDExportInfo

    /// The export's object in nbdinfo's `exports` array, plus nbdtop's own keys at the end.
    var json: JSONValue {
        var members: [(String, JSONValue)] = [("export-name", .string(info.exportName))]
        if let description = info.exportDescription {
            members.append(("export-description", .string(description)))
        }
        members.append(("uri", .string(uri.canonical)))
        if info.structuredReplies, let contexts = info.availableMetaContexts {
            members.append(("contexts", .array(contexts.map(JSONValue.string))))
        }
        members += [
            ("is_rotational", .bool(info.isRotational)),
            ("is_read_only", .bool(info.isReadOnly)),
            ("can_cache", .bool(info.canCache)),
            ("can_df", .bool(info.canDF)),
            ("can_fast_zero", .bool(info.canFastZero)),
            ("can_flush", .bool(info.canFlush)),
            ("can_fua", .bool(info.canFUA)),
            ("can_multi_conn", .bool(info.canMultiConn)),
            ("can_trim", .bool(info.canTrim)),
            ("can_zero", .bool(info.canZero)),
        ]
        if let blockSize = info.blockSize {
            members += [
                ("block_size_minimum", .uint(UInt64(blockSize.minimum))),
                ("block_size_preferred", .uint(UInt64(blockSize.preferred))),
                ("block_size_maximum", .uint(UInt64(blockSize.maximum))),
            ]
        }
        members += [
            ("export-size", .uint(info.size)),
            ("export-size-str", .string(SizeFormatting.human(info.size))),
            ("transmission_flags", .array(info.flags.names.map(JSONValue.string))),
        ]
        return .object(members)
    }

    /// The same facts for a person, one per line, like nbdinfo's text output.
    var text: String {
        var lines = ["export=\"\(info.exportName)\":"]
        func add(_ key: String, _ value: String) { lines.append("\t\(key): \(value)") }
        if let description = info.exportDescription { add("description", description) }
        add("export-size", "\(info.size) (\(SizeFormatting.human(info.size)))")
        add("uri", uri.canonical)
        if info.structuredReplies, let contexts = info.availableMetaContexts {
            lines.append("\tcontexts:")
            lines += contexts.map { "\t\t\($0)" }
        }
        add("transmission flags", info.flags.names.joined(separator: " "))
        add("read-only", info.isReadOnly ? "yes" : "no")
        add("multi-conn", info.canMultiConn
            ? "yes (several connections may be used at once)"
            : "no (the server does not advertise CAN_MULTI_CONN; nbdtop will use one connection)")
        let supported = [("flush", info.canFlush), ("fua", info.canFUA), ("trim", info.canTrim),
                         ("zero", info.canZero), ("fast-zero", info.canFastZero), ("df", info.canDF),
                         ("cache", info.canCache)]
        add("commands", supported.filter(\.1).map(\.0).joined(separator: " "))
        if let blockSize = info.blockSize {
            add("block sizes", "minimum \(blockSize.minimum), preferred \(blockSize.preferred), maximum \(blockSize.maximum)")
        } else {
            add("block sizes", "not advertised (nbdtop assumes 1 / 4096 / 32M)")
        }
        return lines.joined(separator: "\n")
    }

    /// The document around the exports, as nbdinfo starts it.
    /// nbdtop's own `tls_version` and `tls_cipher` follow nbdinfo's keys when TLS is on.
    static func document(handshake: String, tls: NBDTLSSession?, structured: Bool, exports: [ExportReport]) -> JSONValue {
        var members: [(String, JSONValue)] = [
            ("protocol", .string(handshake)),
            ("TLS", .bool(tls != nil)),
            ("structured", .bool(structured)),
            ("exports", .array(exports.map(\.json))),
        ]
        if let tls {
            members += [("tls_version", .string(tls.version)), ("tls_cipher", .string(tls.cipher))]
        }
        return .object(members)
    }

    /// nbdinfo's first line, with the TLS version and cipher when TLS is on.
    static func protocolLine(handshake: String, tls: NBDTLSSession?, structured: Bool) -> String {
        let tlsText = tls.map { "with TLS (\($0.version), \($0.cipher))" } ?? "without TLS"
        return "protocol: \(handshake) \(tlsText), using \(structured ? "structured" : "simple") packets"
    }
}
