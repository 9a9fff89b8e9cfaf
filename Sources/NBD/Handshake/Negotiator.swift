import NIOCore

/// Runs the fixed newstyle handshake as plain sequential code over a transport.
///
/// Each step sends an option and reads its replies; the transport hands out exact-length
/// reads. Every length the server sends is checked against a limit before we wait for
/// that many bytes.
struct Negotiator {
    let transport: any NegotiationTransport
    let uri: NBDURI

    /// Longest option reply payload we accept (export lists, names, descriptions).
    static let maximumOptionReply = 64 * 1024
    /// Most bytes one listing (exports, meta contexts) may add up to.
    static let maximumListingBytes = 4 * 1024 * 1024

    private struct OptionReply {
        var type: UInt32
        var data: ByteBuffer
    }

    /// What the server said in its greeting.
    struct Greeting {
        var fixedNewstyle: Bool
        var noZeroes: Bool
        var handshake: String { fixedNewstyle ? "newstyle-fixed" : "newstyle" }
    }

    // MARK: Bytes

    private func read(_ count: Int) async throws -> ByteBuffer {
        try await transport.read(count)
    }

    private func send(_ buffer: ByteBuffer) async throws {
        try await transport.send(buffer)
    }

    // MARK: Whole handshakes

    /// Negotiates the export `uri` names, as `options` ask; the transmission phase may
    /// start afterwards.
    func negotiateExport(options: NBDConnection.Options) async throws -> NBDExportInfo {
        let greeting = try await greet()
        var info = NBDExportInfo(handshake: greeting.handshake, exportName: uri.exportName, size: 0, flags: [],
                                 structuredReplies: false, metaContexts: [:])
        if uri.tls {
            info.tls = try await startTLS(greeting)
        }
        if greeting.fixedNewstyle {
            if options.structuredReplies {
                info.structuredReplies = try await negotiateStructuredReplies()
            }
            if info.structuredReplies, !options.metaContexts.isEmpty {
                let selected = try await metaContexts(.setMetaContext, queries: options.metaContexts)
                info.metaContexts = Dictionary(selected.map { ($0.name, $0.id) }, uniquingKeysWith: { first, _ in first })
            }
            if options.listMetaContexts {
                info.availableMetaContexts = info.structuredReplies
                    ? try await metaContexts(.listMetaContext, queries: []).map(\.name) : []
            }
            if let export = try await go() {
                (info.size, info.flags, info.blockSize, info.exportDescription) = export
            } else {
                (info.size, info.flags) = try await exportName(noZeroes: greeting.noZeroes)
            }
        } else {
            (info.size, info.flags) = try await exportName(noZeroes: greeting.noZeroes)
        }
        return info
    }

    /// Lists the server's exports, then ends the handshake without choosing one.
    func negotiateListing() async throws -> [NBDExportListing] {
        let greeting = try await greet()
        if uri.tls {
            _ = try await startTLS(greeting)
        }
        guard greeting.fixedNewstyle else {
            throw NBDError.unsupported("server does not support listing exports (no fixed newstyle handshake)")
        }
        let exports = try await listExports()
        await abort()
        return exports
    }

    /// Starts TLS, then ends the handshake without choosing an export.
    func negotiateTLSOnly() async throws -> NBDTLSSession {
        let session = try await startTLS(try await greet())
        await abort()
        return session
    }

    // MARK: Greeting

    func greet() async throws -> Greeting {
        var magic = try await read(16)
        let (password, style) = magic.readMultipleIntegers(as: (UInt64, UInt64).self)!
        guard password == NBDMagic.initPassword else {
            throw NBDError.protocolViolation("not an NBD server (greeting starts with 0x\(String(password, radix: 16)))")
        }
        if style == NBDMagic.oldstyle {
            throw NBDError.unsupported("server uses the old-style handshake, which nbdtop does not support")
        }
        guard style == NBDMagic.optionRequest else {
            throw NBDError.protocolViolation("unknown handshake style 0x\(String(style, radix: 16))")
        }
        var flagsBuffer = try await read(2)
        let serverFlags = flagsBuffer.readInteger(as: UInt16.self)!
        let greeting = Greeting(fixedNewstyle: serverFlags & NBDHandshakeFlags.fixedNewstyle != 0,
                                noZeroes: serverFlags & NBDHandshakeFlags.noZeroes != 0)
        var clientFlags: UInt32 = 0
        if greeting.fixedNewstyle { clientFlags |= UInt32(NBDHandshakeFlags.fixedNewstyle) }
        if greeting.noZeroes { clientFlags |= UInt32(NBDHandshakeFlags.noZeroes) }
        var reply = ByteBuffer()
        reply.writeInteger(clientFlags)
        try await send(reply)
        return greeting
    }

    // MARK: TLS

    /// Asks for TLS with `NBD_OPT_STARTTLS` and runs the TLS handshake on its ACK. Any
    /// other answer ends the connection: `nbds` never falls back to plaintext.
    func startTLS(_ greeting: Greeting) async throws -> NBDTLSSession {
        guard greeting.fixedNewstyle else {
            throw NBDError.tlsFailed("the server's greeting is not fixed newstyle, so it cannot start TLS; nothing was sent in the clear but the greeting's reply")
        }
        try await sendOption(.startTLS)
        let reply = try await readOptionReply(to: .startTLS)
        guard reply.type == NBDOptionReplyType.ack else {
            guard Self.isError(reply) else { throw unexpected(.startTLS, reply) }
            await abort()
            throw TLSClientSetup.refused(replyType: reply.type, message: Self.message(of: reply))
        }
        return try await transport.startTLS()
    }

    // MARK: Options

    private func sendOption(_ option: NBDOption, _ build: (inout ByteBuffer) -> Void = { _ in }) async throws {
        var data = ByteBuffer()
        build(&data)
        try await send(NBDOption.request(code: option.rawValue, data: data))
    }

    private func readOptionReply(to option: NBDOption) async throws -> OptionReply {
        var header = try await read(20)
        let (magic, echoed, type, length) = header.readMultipleIntegers(as: (UInt64, UInt32, UInt32, UInt32).self)!
        guard magic == NBDMagic.optionReply else {
            throw NBDError.protocolViolation("option reply has wrong magic 0x\(String(magic, radix: 16))")
        }
        guard echoed == option.rawValue else {
            throw NBDError.protocolViolation("reply to \(option) names option \(echoed)")
        }
        guard length <= Self.maximumOptionReply else {
            throw NBDError.protocolViolation("reply to \(option) is \(length) bytes long, more than \(Self.maximumOptionReply)")
        }
        return OptionReply(type: type, data: try await read(Int(length)))
    }

    private static func isError(_ reply: OptionReply) -> Bool {
        reply.type & NBDOptionReplyType.errorBit != 0
    }

    private static func message(of reply: OptionReply) -> String {
        var data = reply.data
        return data.readString(length: data.readableBytes) ?? ""
    }

    private func refused(_ option: NBDOption, _ reply: OptionReply) -> NBDError {
        if reply.type == NBDOptionReplyType.unknownExport {
            return .unknownExport(name: uri.exportName, message: Self.message(of: reply))
        }
        if reply.type == NBDOptionReplyType.tlsRequired, !uri.tls {
            return .optionRefused(option: option, reply: NBDOptionReplyType.errorName(reply.type),
                                  message: "the server requires TLS: use nbds:// or nbds+unix://")
        }
        return .optionRefused(option: option, reply: NBDOptionReplyType.errorName(reply.type), message: Self.message(of: reply))
    }

    private func unexpected(_ option: NBDOption, _ reply: OptionReply) -> NBDError {
        .protocolViolation("unexpected reply type \(reply.type) to \(option)")
    }

    /// Asks for structured replies; false when the server does not offer them.
    func negotiateStructuredReplies() async throws -> Bool {
        try await sendOption(.structuredReply)
        let reply = try await readOptionReply(to: .structuredReply)
        if reply.type == NBDOptionReplyType.ack { return true }
        if Self.isError(reply) { return false }
        throw unexpected(.structuredReply, reply)
    }

    private func writeMetaContextQuery(_ queries: [String], into data: inout ByteBuffer) {
        data.writeInteger(UInt32(uri.exportName.utf8.count))
        data.writeString(uri.exportName)
        data.writeInteger(UInt32(queries.count))
        for query in queries {
            data.writeInteger(UInt32(query.utf8.count))
            data.writeString(query)
        }
    }

    /// Sends SET or LIST_META_CONTEXT; returns the contexts the server answered with.
    /// An error reply means "none" (the server may not know the option).
    func metaContexts(_ option: NBDOption, queries: [String]) async throws -> [(name: String, id: UInt32)] {
        try await sendOption(option) { writeMetaContextQuery(queries, into: &$0) }
        var contexts: [(String, UInt32)] = []
        var listingBytes = 0
        while true {
            var reply = try await readOptionReply(to: option)
            switch reply.type {
            case NBDOptionReplyType.ack:
                return contexts
            case NBDOptionReplyType.metaContext:
                guard let id = reply.data.readInteger(as: UInt32.self),
                      let name = reply.data.readString(length: reply.data.readableBytes)
                else { throw NBDError.protocolViolation("malformed meta context reply to \(option)") }
                listingBytes += name.utf8.count
                guard contexts.count < 1024, listingBytes <= Self.maximumListingBytes else {
                    throw NBDError.protocolViolation("too many meta contexts")
                }
                contexts.append((name, id))
            default:
                if Self.isError(reply) { return [] }
                throw unexpected(option, reply)
            }
        }
    }

    /// Lists the server's exports with `NBD_OPT_LIST`.
    func listExports() async throws -> [NBDExportListing] {
        try await sendOption(.list)
        var exports: [NBDExportListing] = []
        var listingBytes = 0
        while true {
            var reply = try await readOptionReply(to: .list)
            switch reply.type {
            case NBDOptionReplyType.ack:
                return exports
            case NBDOptionReplyType.server:
                guard let nameLength = reply.data.readInteger(as: UInt32.self),
                      nameLength <= reply.data.readableBytes,
                      let name = reply.data.readString(length: Int(nameLength)),
                      let description = reply.data.readString(length: reply.data.readableBytes)
                else { throw NBDError.protocolViolation("malformed export list entry") }
                listingBytes += name.utf8.count + description.utf8.count
                guard exports.count < 65536, listingBytes <= Self.maximumListingBytes else {
                    throw NBDError.protocolViolation("export list too long")
                }
                exports.append(NBDExportListing(name: name, description: description))
            default:
                if Self.isError(reply) { throw refused(.list, reply) }
                throw unexpected(.list, reply)
            }
        }
    }

    /// The export facts from GO, or nil when the server does not know GO.
    func go() async throws -> (size: UInt64, flags: NBDTransmissionFlags, blockSize: NBDBlockSize?, description: String?)? {
        try await sendOption(.go) { data in
            data.writeInteger(UInt32(uri.exportName.utf8.count))
            data.writeString(uri.exportName)
            let wanted: [UInt16] = [NBDInfoType.blockSize, NBDInfoType.description]
            data.writeInteger(UInt16(wanted.count))
            for item in wanted { data.writeInteger(item) }
        }
        var export: (UInt64, UInt16)?
        var blockSize: NBDBlockSize?
        var description: String?
        while true {
            var reply = try await readOptionReply(to: .go)
            switch reply.type {
            case NBDOptionReplyType.ack:
                guard let (size, flags) = export else {
                    throw NBDError.protocolViolation("server finished NBD_OPT_GO without telling the export size")
                }
                return (size, NBDTransmissionFlags(rawValue: flags), blockSize, description)
            case NBDOptionReplyType.info:
                guard let item = reply.data.readInteger(as: UInt16.self) else {
                    throw NBDError.protocolViolation("empty NBD_REP_INFO")
                }
                switch item {
                case NBDInfoType.export:
                    guard reply.data.readableBytes == 10 else { throw NBDError.protocolViolation("NBD_INFO_EXPORT of wrong length") }
                    export = reply.data.readMultipleIntegers(as: (UInt64, UInt16).self)
                case NBDInfoType.blockSize:
                    guard reply.data.readableBytes == 12 else { throw NBDError.protocolViolation("NBD_INFO_BLOCK_SIZE of wrong length") }
                    let (minimum, preferred, maximum) = reply.data.readMultipleIntegers(as: (UInt32, UInt32, UInt32).self)!
                    blockSize = try Self.checked(NBDBlockSize(minimum: minimum, preferred: preferred, maximum: maximum))
                case NBDInfoType.description:
                    description = reply.data.readString(length: reply.data.readableBytes)
                default:
                    break // Items we did not ask for are ignored, as the protocol says.
                }
            default:
                if reply.type == NBDOptionReplyType.unsupported { return nil }
                if Self.isError(reply) { throw refused(.go, reply) }
                throw unexpected(.go, reply)
            }
        }
    }

    private static func checked(_ sizes: NBDBlockSize) throws -> NBDBlockSize {
        func isPowerOfTwo(_ value: UInt32) -> Bool { value != 0 && value & (value - 1) == 0 }
        guard isPowerOfTwo(sizes.minimum), sizes.minimum <= 64 * 1024,
              isPowerOfTwo(sizes.preferred), sizes.preferred >= sizes.minimum,
              sizes.maximum >= sizes.minimum, sizes.maximum == UInt32.max || sizes.maximum % sizes.minimum == 0
        else {
            throw NBDError.protocolViolation("impossible block sizes \(sizes.minimum)/\(sizes.preferred)/\(sizes.maximum)")
        }
        return sizes
    }

    /// The old way to pick an export: no errors, the server just hangs up if it is unknown.
    func exportName(noZeroes: Bool) async throws -> (size: UInt64, flags: NBDTransmissionFlags) {
        try await sendOption(.exportName) { $0.writeString(uri.exportName) }
        var reply: ByteBuffer
        do {
            reply = try await read(noZeroes ? 10 : 134)
        } catch NBDError.connectionClosed {
            throw NBDError.unknownExport(name: uri.exportName, message: "server closed the connection")
        }
        let (size, flags) = reply.readMultipleIntegers(as: (UInt64, UInt16).self)!
        return (size, NBDTransmissionFlags(rawValue: flags))
    }

    /// Tells the server we are done without choosing an export (after listing).
    func abort() async {
        try? await sendOption(.abort)
        _ = try? await readOptionReply(to: .abort)
    }
}
