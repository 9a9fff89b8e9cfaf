extension NBDExportInfo {
    /// Checks a request against what the server announced, before anything is sent.
    ///
    /// The protocol forbids using flags or commands the server did not advertise and
    /// requests beyond the export's end or above the maximum payload; breaking those rules
    /// can make a server disconnect, so they are caught here with a message instead.
    func validate(_ request: NBDRequest) throws(NBDError) {
        let type = request.type
        func refuse(_ why: String) -> NBDError {
            .invalidRequest("\(type) of \(request.length) bytes at offset \(request.offset): \(why)")
        }
        if type == .write {
            let payloadBytes = request.payload.reduce(0) { $0 + $1.readableBytes }
            guard payloadBytes == Int(request.length) else { throw refuse("payload of \(payloadBytes) bytes differs from length") }
        } else if !request.payload.isEmpty {
            throw refuse("only WRITE carries data")
        }
        switch type {
        case .flush, .disconnect:
            guard type != .flush || canFlush else { throw refuse("server does not support FLUSH") }
            return
        case .write, .trim, .writeZeroes:
            guard !isReadOnly else { throw refuse("export is read-only") }
        case .read, .blockStatus, .cache:
            break
        }
        switch type {
        case .trim: guard canTrim else { throw refuse("server does not support TRIM") }
        case .writeZeroes: guard canZero else { throw refuse("server does not support WRITE_ZEROES") }
        case .cache: guard canCache else { throw refuse("server does not support CACHE") }
        case .blockStatus: guard canBlockStatus else { throw refuse("server did not agree to base:allocation") }
        default: break
        }
        let flags = request.flags
        if flags.contains(.fua) {
            guard canFUA, type == .write || type == .trim || type == .writeZeroes else { throw refuse("FUA not allowed") }
        }
        if flags.contains(.noHole), type != .writeZeroes { throw refuse("NO_HOLE is only for WRITE_ZEROES") }
        if flags.contains(.fastZero) {
            guard canFastZero, type == .writeZeroes else { throw refuse("FAST_ZERO not allowed") }
        }
        if flags.contains(.dontFragment) {
            guard canDF, type == .read else { throw refuse("DF not allowed") }
        }
        if flags.contains(.requestOne), type != .blockStatus { throw refuse("REQ_ONE is only for BLOCK_STATUS") }

        guard request.length > 0 else { throw refuse("length is zero") }
        let end = request.offset.addingReportingOverflow(UInt64(request.length))
        guard !end.overflow, end.partialValue <= size else { throw refuse("beyond the end of the export (\(size) bytes)") }
        if type == .read || type == .write {
            guard request.length <= maximumPayload else { throw refuse("larger than the maximum payload of \(maximumPayload) bytes") }
        }
        let alignment = UInt64(minimumBlockSize)
        let endsAtExportEnd = end.partialValue == size
        guard request.offset % alignment == 0, endsAtExportEnd || UInt64(request.length) % alignment == 0 else {
            throw refuse("not aligned to the minimum block size of \(alignment) bytes")
        }
    }
}
