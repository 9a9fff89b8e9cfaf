/// Magic numbers that open every NBD handshake message, request and reply.
///
/// Values are from the NBD protocol specification (`doc/proto.md`).
public enum NBDMagic {
    /// "NBDMAGIC": the first eight bytes a server sends.
    public static let initPassword: UInt64 = 0x4e42_444d_4147_4943
    /// "IHAVEOPT": newstyle negotiation; also prefixes every option the client sends.
    public static let optionRequest: UInt64 = 0x4948_4156_454f_5054
    /// Old-style negotiation, which nbdtop refuses.
    public static let oldstyle: UInt64 = 0x0000_4202_8186_1253
    /// Prefix of every option reply.
    public static let optionReply: UInt64 = 0x0003_e889_0455_65a9
    /// Prefix of every transmission request.
    public static let request: UInt32 = 0x2560_9513
    /// Prefix of a simple reply.
    public static let simpleReply: UInt32 = 0x6744_6698
    /// Prefix of a structured reply chunk.
    public static let structuredReply: UInt32 = 0x668e_33ef
}
