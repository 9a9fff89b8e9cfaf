import NIOCore

extension RelayDecoder {
    /// Decodes what the server sent, passing it on as it goes.
    mutating func decodeServer(_ buffer: inout ByteBuffer, into events: inout [RelayEvent]) throws(RelayViolation) {
        while buffer.readableBytes > 0 {
            switch serverState {
            case .greeting:
                guard let greeting = serverHeader.gather(16, from: &buffer) else { return }
                let (password, style) = greeting.getMultipleIntegers(at: greeting.readerIndex, as: (UInt64, UInt64).self)!
                guard password == NBDMagic.initPassword else {
                    throw RelayViolation(.server, "greeting has wrong magic 0x\(String(password, radix: 16))")
                }
                events.append(.toClient(greeting))
                if upstreamTLS && style != NBDMagic.optionRequest {
                    throw RelayViolation(.server, "uses the old-style handshake, so it cannot start TLS")
                }
                switch style {
                case NBDMagic.optionRequest: serverState = .handshakeFlags
                case NBDMagic.oldstyle: serverState = .oldstyleExport
                default: throw RelayViolation(.server, "greeting has unknown style 0x\(String(style, radix: 16))")
                }

            case .handshakeFlags:
                guard let flags = serverHeader.gather(2, from: &buffer) else { return }
                if upstreamTLS, let value = flags.getInteger(at: flags.readerIndex, as: UInt16.self),
                   value & NBDHandshakeFlags.fixedNewstyle == 0 {
                    throw RelayViolation(.server, "greeting is not fixed newstyle, so it cannot start TLS")
                }
                events.append(.toClient(flags))
                serverState = .optionReplyHeader
                try resumeClient(.clientFlags, into: &events)
                try serverAtOptionBoundary(into: &events)

            case .oldstyleExport:
                // Size (8), flags (4: the transmission flags are the low 16 bits), 124 zeroes.
                guard let export = serverHeader.gather(12, from: &buffer) else { return }
                let (size, flags) = export.getMultipleIntegers(at: export.readerIndex, as: (UInt64, UInt32).self)!
                events.append(.toClient(export))
                try startTransmission(size: size, flags: UInt16(truncatingIfNeeded: flags), after: 124, into: &events)

            case .padding(let remaining):
                let count = min(remaining, buffer.readableBytes)
                events.append(.toClient(buffer.readSlice(length: count)!))
                serverState = count == remaining ? .replyHeader : .padding(remaining: remaining - count)

            case .optionReplyHeader:
                guard let header = serverHeader.gather(20, from: &buffer) else { return }
                let (magic, option, type, length) = header.getMultipleIntegers(
                    at: header.readerIndex, as: (UInt64, UInt32, UInt32, UInt32).self)!
                guard magic == NBDMagic.optionReply else {
                    throw RelayViolation(.server, "option reply has wrong magic 0x\(String(magic, radix: 16))")
                }
                if case .askedByRelay(let asked)? = pendingOptions.first {
                    guard asked == option else {
                        throw RelayViolation(.server, "replied to option \(option) instead of the relay's \(asked)")
                    }
                    guard length <= Self.maximumRelayOptionReply else {
                        throw RelayViolation(.server, "answered option \(option) with \(length) bytes")
                    }
                    replyType = type
                    serverState = .relayOptionReplyData(length: Int(length))
                    if length == 0 { try relayOptionAnswered(message: ByteBuffer(), into: &events) }
                    continue
                }
                guard case .passedOn(let asked)? = pendingOptions.first, asked == option else {
                    throw RelayViolation(.server, "replied to option \(option), which is not the one waiting for an answer")
                }
                events.append(.toClient(header))
                if type == NBDOptionReplyType.info && length == 12 && (option == NBDOption.go.rawValue || option == NBDOption.info.rawValue) {
                    serverState = .exportInfo(remaining: 12)
                } else {
                    serverState = .optionReplyData(remaining: Int(length))
                }
                replyType = type
                try finishOptionReplyIfComplete(into: &events)

            case .optionReplyData(let remaining):
                let count = min(remaining, buffer.readableBytes)
                events.append(.toClient(buffer.readSlice(length: count)!))
                serverState = .optionReplyData(remaining: remaining - count)
                try finishOptionReplyIfComplete(into: &events)

            case .exportInfo:
                guard let info = serverHeader.gather(12, from: &buffer) else { return }
                let (item, size, flags) = info.getMultipleIntegers(at: info.readerIndex, as: (UInt16, UInt64, UInt16).self)!
                if item == NBDInfoType.export {
                    exportSize = size
                    transmissionFlags = flags
                }
                events.append(.toClient(info))
                serverState = .optionReplyData(remaining: 0)
                try finishOptionReplyIfComplete(into: &events)

            case .exportNameReply:
                guard let export = serverHeader.gather(10, from: &buffer) else { return }
                let (size, flags) = export.getMultipleIntegers(at: export.readerIndex, as: (UInt64, UInt16).self)!
                events.append(.toClient(export))
                pendingOptions.removeFirst()
                try startTransmission(size: size, flags: flags, after: clientNoZeroes ? 0 : 124, into: &events)

            case .relayOptionReplyData(let length):
                guard let message = serverHeader.gather(length, from: &buffer) else { return }
                try relayOptionAnswered(message: message, into: &events)

            case .startingTLS:
                throw RelayViolation(.server, "sent \(buffer.readableBytes) bytes in the clear after accepting NBD_OPT_STARTTLS")

            case .replyHeader:
                guard let magic = serverHeader.peekMagic(from: &buffer) else { return }
                switch magic {
                case NBDMagic.simpleReply:
                    guard let header = serverHeader.gather(16, from: &buffer) else { return }
                    let (_, error, cookie) = header.getMultipleIntegers(at: header.readerIndex, as: (UInt32, UInt32, UInt64).self)!
                    guard let entry = inFlight[cookie] else {
                        throw RelayViolation(.server, "simple reply for unknown cookie \(cookie)")
                    }
                    events.append(.toClient(header))
                    if error != 0 { inFlight[cookie]!.error = NBDErrno(rawValue: error) }
                    if error == 0 && entry.request.type == .read && entry.request.length > 0 {
                        serverState = .simpleReadPayload(cookie: cookie, remaining: Int(entry.request.length))
                    } else {
                        answer(cookie, into: &events)
                    }
                case NBDMagic.structuredReply:
                    guard let header = serverHeader.gather(20, from: &buffer) else { return }
                    let (_, flags, type, cookie, length) = header.getMultipleIntegers(
                        at: header.readerIndex, as: (UInt32, UInt16, UInt16, UInt64, UInt32).self)!
                    guard inFlight[cookie] != nil else {
                        throw RelayViolation(.server, "structured reply chunk for unknown cookie \(cookie)")
                    }
                    events.append(.toClient(header))
                    if type & NBDChunkType.errorBit != 0 {
                        guard length >= 6 else { throw RelayViolation(.server, "error chunk of \(length) bytes is too short") }
                        serverState = .chunkErrno(cookie: cookie, flags: flags, remaining: Int(length))
                    } else {
                        serverState = .chunkPayload(cookie: cookie, flags: flags, remaining: Int(length))
                        finishChunkIfComplete(into: &events)
                    }
                default:
                    throw RelayViolation(.server, "reply has wrong magic 0x\(String(magic, radix: 16))")
                }

            case .simpleReadPayload(let cookie, let remaining):
                let count = min(remaining, buffer.readableBytes)
                events.append(.toClient(buffer.readSlice(length: count)!))
                if count == remaining {
                    serverState = .replyHeader
                    answer(cookie, into: &events)
                } else {
                    serverState = .simpleReadPayload(cookie: cookie, remaining: remaining - count)
                }

            case .chunkErrno(let cookie, let flags, let remaining):
                guard let errno = serverHeader.gather(4, from: &buffer) else { return }
                let value = errno.getInteger(at: errno.readerIndex, as: UInt32.self)!
                if inFlight[cookie]?.error == nil { inFlight[cookie]?.error = NBDErrno(rawValue: value) }
                events.append(.toClient(errno))
                serverState = .chunkPayload(cookie: cookie, flags: flags, remaining: remaining - 4)

            case .chunkPayload(let cookie, let flags, let remaining):
                let count = min(remaining, buffer.readableBytes)
                events.append(.toClient(buffer.readSlice(length: count)!))
                serverState = .chunkPayload(cookie: cookie, flags: flags, remaining: remaining - count)
                finishChunkIfComplete(into: &events)

            case .finished:
                throw RelayViolation(.server, "sent \(buffer.readableBytes) bytes after the handshake was abandoned")
            }
        }
    }

    /// The server answered the relay's `NBD_OPT_STARTTLS` (`replyType`, with `message`):
    /// an ACK means the TLS handshake comes next, an error that the client must be turned away.
    private mutating func relayOptionAnswered(message: ByteBuffer, into events: inout [RelayEvent]) throws(RelayViolation) {
        pendingOptions.removeFirst()
        if replyType == NBDOptionReplyType.ack {
            serverState = .startingTLS
            events.append(.upstreamTLSAccepted)
        } else if replyType & NBDOptionReplyType.errorBit != 0 {
            serverState = .finished
            events.append(.upstreamTLSRefused(replyType: replyType, message: String(buffer: message)))
        } else {
            throw RelayViolation(.server, "answered NBD_OPT_STARTTLS with reply type \(replyType), neither an ACK nor an error")
        }
    }

    /// Between option replies: answers the options the relay answers itself when their
    /// turn has come, and expects EXPORT_NAME's reply when it is next.
    mutating func serverAtOptionBoundary(into events: inout [RelayEvent]) throws(RelayViolation) {
        guard case .optionReplyHeader = serverState, serverHeader.pendingBytes == 0 else { return }
        while case .answeredByRelay(let option, let replyType)? = pendingOptions.first {
            pendingOptions.removeFirst()
            events.append(.toClient(Self.relayReply(option: option, replyType: replyType, message: refusal ?? "")))
            events.append(.optionAnsweredByRelay(code: option, replyType: replyType))
        }
        if case .passedOn(NBDOption.exportName.rawValue)? = pendingOptions.first {
            serverState = .exportNameReply
        }
    }

    /// After an option reply's data: a final reply (an ACK or an error) answers the option;
    /// an ACK to GO starts transmission, an error to GO lets the client go on haggling.
    private mutating func finishOptionReplyIfComplete(into events: inout [RelayEvent]) throws(RelayViolation) {
        guard case .optionReplyData(0) = serverState else { return }
        serverState = .optionReplyHeader
        let isFinal = replyType == NBDOptionReplyType.ack || replyType & NBDOptionReplyType.errorBit != 0
        guard isFinal, case .passedOn(let option)? = pendingOptions.first else { return }
        pendingOptions.removeFirst()
        switch option {
        case NBDOption.go.rawValue where replyType == NBDOptionReplyType.ack:
            try startTransmission(size: exportSize, flags: transmissionFlags, after: 0, into: &events)
            return
        case NBDOption.go.rawValue:
            try resumeClient(.optionHeader, into: &events)
        case NBDOption.abort.rawValue:
            serverState = .finished
            return
        default:
            break
        }
        try serverAtOptionBoundary(into: &events)
    }

    private mutating func startTransmission(size: UInt64?, flags: UInt16?, after padding: Int, into events: inout [RelayEvent]) throws(RelayViolation) {
        serverState = padding > 0 ? .padding(remaining: padding) : .replyHeader
        exportSize = size
        transmissionFlags = flags
        events.append(.transmissionStarted(exportSize: size, transmissionFlags: flags))
        try resumeClient(.requestHeader, into: &events)
    }

    private mutating func finishChunkIfComplete(into events: inout [RelayEvent]) {
        guard case .chunkPayload(let cookie, let flags, 0) = serverState else { return }
        serverState = .replyHeader
        if flags & NBDChunkType.flagDone != 0 { answer(cookie, into: &events) }
    }

    private mutating func answer(_ cookie: UInt64, into events: inout [RelayEvent]) {
        guard let entry = inFlight.removeValue(forKey: cookie) else { return }
        events.append(.replyReceived(entry.request, error: entry.error))
    }
}
