import NIOCore

extension RelayDecoder {
    /// Decodes what the client sent, passing it on as it goes; bytes that come while the
    /// server must speak first are held until `resumeClient`.
    mutating func decodeClient(_ buffer: inout ByteBuffer, into events: inout [RelayEvent]) throws(RelayViolation) {
        while buffer.readableBytes > 0 {
            switch clientState {
            case .waitingForServer:
                if heldClientBytes == nil {
                    heldClientBytes = buffer
                } else {
                    heldClientBytes!.writeBuffer(&buffer)
                }
                buffer.moveReaderIndex(to: buffer.writerIndex)
                guard heldClientBytes!.readableBytes <= Self.maximumHeldClientBytes else {
                    throw RelayViolation(.client, "sent more than \(Self.maximumHeldClientBytes) bytes before the server answered")
                }
                return

            case .clientFlags:
                guard let flags = clientHeader.gather(4, from: &buffer) else { return }
                let value = flags.getInteger(at: flags.readerIndex, as: UInt32.self)!
                clientNoZeroes = value & UInt32(NBDHandshakeFlags.noZeroes) != 0
                events.append(.toServer(flags))
                guard upstreamTLS else {
                    clientState = .optionHeader
                    continue
                }
                guard value & UInt32(NBDHandshakeFlags.fixedNewstyle) != 0 else {
                    throw RelayViolation(.client, "did not take the fixed newstyle handshake, which TLS towards the server needs")
                }
                events.append(.toServer(NBDOption.request(code: NBDOption.startTLS.rawValue)))
                pendingOptions.append(.askedByRelay(NBDOption.startTLS.rawValue))
                clientState = .waitingForServer

            case .optionHeader:
                guard let header = clientHeader.gather(16, from: &buffer) else { return }
                let (magic, code, length) = header.getMultipleIntegers(at: header.readerIndex, as: (UInt64, UInt32, UInt32).self)!
                guard magic == NBDMagic.optionRequest else {
                    throw RelayViolation(.client, "option has wrong magic 0x\(String(magic, radix: 16))")
                }
                guard pendingOptions.count < Self.maximumPendingOptions else {
                    throw RelayViolation(.client, "sent more than \(Self.maximumPendingOptions) options without waiting for answers")
                }
                if refusal != nil {
                    refusedOptions += 1
                    // EXPORT_NAME has no error reply, ABORT wants none: the connection just ends.
                    guard code != NBDOption.exportName.rawValue, code != NBDOption.abort.rawValue,
                          refusedOptions <= Self.maximumRefusedOptions else {
                        clientState = .finished
                        buffer.moveReaderIndex(to: buffer.writerIndex)
                        events.append(.clientTurnedAway)
                        return
                    }
                    pendingOptions.append(.answeredByRelay(code, replyType: Self.refusalReplyType))
                    clientState = .optionData(remaining: Int(length), passOn: false)
                } else if let replyType = Self.answeredByRelay[code] {
                    pendingOptions.append(.answeredByRelay(code, replyType: replyType))
                    clientState = .optionData(remaining: Int(length), passOn: false)
                } else {
                    pendingOptions.append(.passedOn(code))
                    events.append(.toServer(header))
                    events.append(.optionSent(code: code))
                    clientState = .optionData(remaining: Int(length), passOn: true)
                }
                try finishOptionIfComplete()

            case .optionData(let remaining, let passOn):
                let count = min(remaining, buffer.readableBytes)
                let data = buffer.readSlice(length: count)!
                if passOn { events.append(.toServer(data)) }
                clientState = .optionData(remaining: remaining - count, passOn: passOn)
                try finishOptionIfComplete()

            case .requestHeader:
                guard let header = clientHeader.gather(NBDRequest.headerSize, from: &buffer) else { return }
                let (magic, flags, type, cookie, offset, length) = header.getMultipleIntegers(
                    at: header.readerIndex, as: (UInt32, UInt16, UInt16, UInt64, UInt64, UInt32).self)!
                guard magic == NBDMagic.request else {
                    throw RelayViolation(.client, "request has wrong magic 0x\(String(magic, radix: 16))")
                }
                let request = RelayedRequest(type: NBDCommandType(rawValue: type), flags: NBDCommandFlags(rawValue: flags),
                                             cookie: cookie, offset: offset, length: length)
                events.append(.toServer(header))
                if request.type == .disconnect {
                    clientState = .finished
                    continue
                }
                guard inFlight[cookie] == nil else {
                    throw RelayViolation(.client, "reused cookie \(cookie) while its request is in flight")
                }
                guard inFlight.count < Self.maximumRequestsInFlight else {
                    throw RelayViolation(.client, "has more than \(Self.maximumRequestsInFlight) requests in flight")
                }
                inFlight[cookie] = InFlight(request: request)
                events.append(.requestSent(request))
                if request.type == .write && length > 0 {
                    clientState = .writePayload(remaining: Int(length))
                }

            case .writePayload(let remaining):
                let count = min(remaining, buffer.readableBytes)
                events.append(.toServer(buffer.readSlice(length: count)!))
                clientState = count == remaining ? .requestHeader : .writePayload(remaining: remaining - count)

            case .finished:
                throw RelayViolation(.client, "sent \(buffer.readableBytes) bytes after ending the connection")
            }
        }
    }

    /// After an option's data: what comes next depends on the option.
    private mutating func finishOptionIfComplete() throws(RelayViolation) {
        guard case .optionData(0, _) = clientState, let last = pendingOptions.last else { return }
        switch last {
        case .passedOn(NBDOption.go.rawValue), .passedOn(NBDOption.exportName.rawValue):
            clientState = .waitingForServer
        case .passedOn(NBDOption.abort.rawValue):
            clientState = .finished
        default:
            clientState = .optionHeader
        }
    }

    /// The server has answered what the client waited for: decodes the bytes held meanwhile.
    mutating func resumeClient(_ state: ClientState, into events: inout [RelayEvent]) throws(RelayViolation) {
        clientState = state
        guard var held = heldClientBytes else { return }
        heldClientBytes = nil
        try decodeClient(&held, into: &events)
    }
}
