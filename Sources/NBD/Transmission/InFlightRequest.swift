import NIOCore

/// A request that was sent and whose reply has not finished, kept on the event loop.
final class InFlightRequest {
    let type: NBDCommandType
    let offset: UInt64
    let length: UInt32
    let onChunk: ((NBDReplyChunk) -> Void)?
    let onComplete: (Result<Void, NBDError>) -> Void
    /// READ bytes answered so far, by data or hole chunks; must equal `length` at the end.
    var coveredBytes: UInt64 = 0
    /// Whether a BLOCK_STATUS reply brought any `base:allocation` extents. A flag, not a
    /// sum of their lengths: a server may send any number of chunks, whose lengths could
    /// add up beyond `UInt64.max`.
    var receivedExtents = false
    /// The first error the server reported for this request.
    var error: NBDError?

    init(_ request: NBDRequest, onChunk: ((NBDReplyChunk) -> Void)?, onComplete: @escaping (Result<Void, NBDError>) -> Void) {
        self.type = request.type
        self.offset = request.offset
        self.length = request.length
        self.onChunk = onChunk
        self.onComplete = onComplete
    }

    var shape: ReplyDecoder.RequestShape {
        ReplyDecoder.RequestShape(type: type, offset: offset, length: length)
    }
}
