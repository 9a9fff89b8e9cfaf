/// Block-size constraints a server announced with `NBD_INFO_BLOCK_SIZE`.
public struct NBDBlockSize: Sendable, Equatable {
    /// Requests should be aligned to this; a power of two from 1 to 64 KiB.
    public var minimum: UInt32
    /// Requests of this size and alignment are efficient.
    public var preferred: UInt32
    /// No request with a payload may be larger than this.
    public var maximum: UInt32

    public init(minimum: UInt32, preferred: UInt32, maximum: UInt32) {
        self.minimum = minimum
        self.preferred = preferred
        self.maximum = maximum
    }
}

/// What negotiation learned about one export.
public struct NBDExportInfo: Sendable, Equatable {
    /// The handshake style: `newstyle-fixed` or `newstyle`, as nbdinfo names them.
    public var handshake: String
    public var exportName: String
    public var exportDescription: String?
    /// Export size in bytes.
    public var size: UInt64
    public var flags: NBDTransmissionFlags
    /// Constraints the server announced; nil when it announced none.
    public var blockSize: NBDBlockSize?
    /// Whether structured replies were negotiated.
    public var structuredReplies: Bool
    /// Metadata contexts selected with `NBD_OPT_SET_META_CONTEXT`, by name, with their ids.
    public var metaContexts: [String: UInt32]
    /// Every context the server offers for this export, when that was asked for.
    public var availableMetaContexts: [String]?
    /// The TLS session the handshake ran in; nil for plaintext.
    public var tls: NBDTLSSession?

    /// Largest payload when the server does not say (the protocol's recommended limit).
    public static let defaultMaximumPayload: UInt32 = 32 * 1024 * 1024

    public var isReadOnly: Bool { flags.contains(.readOnly) }
    public var canFlush: Bool { flags.contains(.sendFlush) }
    public var canFUA: Bool { flags.contains(.sendFUA) }
    public var canTrim: Bool { flags.contains(.sendTrim) }
    public var canZero: Bool { flags.contains(.sendWriteZeroes) }
    public var canFastZero: Bool { flags.contains(.sendFastZero) }
    public var canDF: Bool { flags.contains(.sendDF) && structuredReplies }
    public var canCache: Bool { flags.contains(.sendCache) }
    public var canMultiConn: Bool { flags.contains(.canMultiConn) }
    public var isRotational: Bool { flags.contains(.rotational) }
    /// Whether `NBD_CMD_BLOCK_STATUS` for `base:allocation` may be sent.
    public var canBlockStatus: Bool { metaContexts[NBDMetaContext.baseAllocation] != nil }

    /// Alignment every request must keep (1 when the server did not say).
    public var minimumBlockSize: UInt32 { blockSize?.minimum ?? 1 }
    /// The size that is efficient (4 KiB when the server did not say).
    public var preferredBlockSize: UInt32 { blockSize?.preferred ?? 4096 }
    /// The largest payload one READ or WRITE may carry.
    public var maximumPayload: UInt32 { min(blockSize?.maximum ?? Self.defaultMaximumPayload, Self.defaultMaximumPayload) }
}

/// One entry of the server's export list (`NBD_OPT_LIST`).
public struct NBDExportListing: Sendable, Equatable {
    public var name: String
    public var description: String
}
