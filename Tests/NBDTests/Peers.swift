import NBD
import NBDTestSupport
import Testing

/// A real server configuration and what negotiation must find out about it.
struct Peer: Sendable, CustomTestStringConvertible {
    var name: String
    var start: @Sendable () throws -> ServerProcess
    var structured: Bool
    var multiConn: Bool
    var blockSize: NBDBlockSize?

    var testDescription: String { name }

    static let size: UInt64 = 64 << 20

    /// Writable servers, each started on a private socket.
    static let writable: [Peer] = [
        Peer(name: "nbdkit memory", start: { try .nbdkit(["memory", "64M"]) }, structured: true, multiConn: true),
        Peer(name: "nbdkit blocksize-policy",
             start: { try .nbdkit(["memory", "64M", "blocksize-minimum=512", "blocksize-preferred=4096", "blocksize-maximum=65536"],
                                  filters: ["blocksize-policy"]) },
             structured: true, multiConn: true, blockSize: NBDBlockSize(minimum: 512, preferred: 4096, maximum: 65536)),
        Peer(name: "nbdkit multi-conn disabled",
             start: { try .nbdkit(["memory", "64M", "multi-conn-mode=disable"], filters: ["multi-conn"]) },
             structured: true, multiConn: false),
        Peer(name: "nbdkit --no-sr", start: { try .nbdkit(["memory", "64M"], options: ["--no-sr"]) },
             structured: false, multiConn: true),
        Peer(name: "qemu-nbd -e 1", start: { try .qemuNBD(imageSize: size) }, structured: true, multiConn: false,
             blockSize: NBDBlockSize(minimum: 1, preferred: 4096, maximum: 32 << 20)),
        Peer(name: "qemu-nbd -e 2", start: { try .qemuNBD(imageSize: size, arguments: ["-e", "2"]) }, structured: true,
             multiConn: true, blockSize: NBDBlockSize(minimum: 1, preferred: 4096, maximum: 32 << 20)),
        Peer(name: "nbd-server", start: { try .nbdServer(imageSize: size) }, structured: false, multiConn: true),
    ]
}
