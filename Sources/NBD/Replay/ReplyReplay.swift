import NIOCore

/// Feeds recorded server bytes to the real transmission-phase reply handling, without a
/// socket.
///
/// The fuzzers and the corpus tests drive `NBDClientHandler` and `ReplyDecoder` through
/// this. The input starts with a header saying what was negotiated, how the bytes arrive
/// and which requests are in flight; the rest is the server's replies:
///
///     byte 0      bit 0: structured replies; bit 1: base:allocation, whose context id
///                 is the byte shifted right by 2
///     byte 1      bytes per socket read (0: everything in one read)
///     byte 2      requests in flight, minus one (only the low 3 bits count)
///     13 bytes    per request: command (mod 7: READ, WRITE, FLUSH, TRIM, CACHE,
///                 WRITE_ZEROES, BLOCK_STATUS), offset (8 bytes), length (4 bytes; a
///                 WRITE's is taken mod 4096 to keep its payload small)
///
/// The export is as large as possible and allows everything. A request it would refuse
/// is not sent, as `NBDConnection.submit` would not send it; the others get cookies 1,
/// 2, 3… in order. After the last byte the server hangs up.
package enum ReplyReplay {
    /// How the requests of one replay ended.
    package struct Outcome: Sendable {
        /// One result per request sent, in cookie order.
        package var results: [Swift.Result<Void, NBDError>]
        /// Why the connection ended.
        package var closeReason: NBDError?
        /// Breaches of the handler's promises (a request completed twice or never, a chunk
        /// outside its request); empty when the client behaved.
        package var violations: [String]
    }

    /// What a request's command byte picks from, in the order the format lists them.
    static let commands: [NBDCommandType] = [.read, .write, .flush, .trim, .cache, .writeZeroes, .blockStatus]

    /// Replays `input` through a handler added to `channel`, whose event loop must be the
    /// calling thread (an `EmbeddedChannel`).
    package static func run(_ input: [UInt8], on channel: any Channel) throws -> Outcome {
        var input = ByteBuffer(bytes: input)
        guard let (negotiated, bytesPerRead, requestCount) = input.readMultipleIntegers(as: (UInt8, UInt8, UInt8).self) else {
            return Outcome(results: [], closeReason: nil, violations: [])
        }
        let info = exportInfo(negotiated)
        let handler = NBDClientHandler()
        try channel.pipeline.syncOperations.addHandler(handler)
        try handler.beginTransmission(structuredReplies: info.structuredReplies,
                                      baseAllocationContextID: info.metaContexts[NBDMetaContext.baseAllocation])

        var trackers: [ReplayedRequest] = []
        for _ in 0...(requestCount & 7) {
            guard let (command, offset, length) = input.readMultipleIntegers(as: (UInt8, UInt64, UInt32).self) else { break }
            let request = makeRequest(command: command, offset: offset, length: length)
            guard (try? info.validate(request)) != nil else { continue }
            let tracker = ReplayedRequest(request)
            handler.send(request, onChunk: tracker.received, onComplete: tracker.completed)
            trackers.append(tracker)
        }

        let pipeline = channel.pipeline.syncOperations
        while input.readableBytes > 0 {
            let count = bytesPerRead == 0 ? input.readableBytes : min(Int(bytesPerRead), input.readableBytes)
            pipeline.fireChannelRead(NIOAny(input.readSlice(length: count)!))
        }
        pipeline.fireChannelInactive()

        var violations: [String] = []
        var results: [Swift.Result<Void, NBDError>] = []
        for (index, tracker) in trackers.enumerated() {
            violations += tracker.violations.map { "request \(index + 1): \($0)" }
            if let result = tracker.result {
                results.append(result)
            } else {
                violations.append("request \(index + 1): never completed, though the server hung up")
                results.append(.failure(.connectionClosed("never completed")))
            }
        }
        return Outcome(results: results, closeReason: handler.closeReason, violations: violations)
    }

    private static func exportInfo(_ negotiated: UInt8) -> NBDExportInfo {
        let structured = negotiated & 1 != 0
        let contexts = structured && negotiated & 2 != 0 ? [NBDMetaContext.baseAllocation: UInt32(negotiated >> 2)] : [:]
        let everything = NBDTransmissionFlags.named.reduce(into: NBDTransmissionFlags()) { $0.insert($1.flag) }
        return NBDExportInfo(handshake: "newstyle-fixed", exportName: "", size: .max,
                             flags: everything.subtracting(.readOnly), structuredReplies: structured, metaContexts: contexts)
    }

    private static func makeRequest(command: UInt8, offset: UInt64, length: UInt32) -> NBDRequest {
        let type = commands[Int(command) % commands.count]
        guard type == .write else { return NBDRequest(type: type, offset: offset, length: length) }
        return .write(ByteBuffer(repeating: 0, count: Int(length % 4096)), at: offset)
    }
}

/// One replayed request: checks every chunk and the completion against what was asked.
private final class ReplayedRequest {
    let request: NBDRequest
    private(set) var result: Result<Void, NBDError>?
    private(set) var violations: [String] = []
    /// READ bytes covered by data and hole chunks.
    private var coveredBytes: UInt64 = 0

    init(_ request: NBDRequest) {
        self.request = request
    }

    func received(_ chunk: NBDReplyChunk) {
        if result != nil { violations.append("chunk after completion") }
        switch chunk {
        case .data(let offset, let bytes):
            checkRange(offset: offset, length: UInt64(bytes.readableBytes), what: "data")
        case .hole(let offset, let length):
            checkRange(offset: offset, length: UInt64(length), what: "hole")
        case .extents(let extents):
            if request.type != .blockStatus { violations.append("extents answering \(request.type)") }
            if extents.contains(where: { $0.length == 0 }) { violations.append("extent of length 0") }
        }
    }

    private func checkRange(offset: UInt64, length: UInt64, what: String) {
        guard request.type == .read else {
            violations.append("\(what) chunk answering \(request.type)")
            return
        }
        let end = request.offset + UInt64(request.length)
        if offset < request.offset || offset > end || length > end - offset {
            violations.append("\(what) chunk of \(length) bytes at \(offset), outside the request")
        }
        coveredBytes += length
    }

    func completed(_ result: Result<Void, NBDError>) {
        if self.result != nil { violations.append("completed twice") }
        if case .success = result, request.type == .read, coveredBytes != UInt64(request.length) {
            violations.append("READ succeeded with \(coveredBytes) of \(request.length) bytes")
        }
        self.result = result
    }
}
