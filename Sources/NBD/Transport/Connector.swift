import NIOCore
import NIOPosix
#if canImport(Glibc)
import Glibc
#endif

/// Opens the socket for an NBD URI, with the NBD handler already in the pipeline.
enum Connector {
    /// Receive buffers of one fixed 256 KiB. READ payloads are slices of these buffers, and a
    /// slice keeps its whole buffer alive until the destination has the data, so a buffer
    /// that a socket read filled only partly holds memory for nothing. Buffers that grew to
    /// 4 MiB made eight lanes of 32 MiB requests hold up to 440 MiB for 256 MiB of data;
    /// 256 KiB, which reads under load almost always fill, keeps that close to the data.
    static let receiveAllocator = FixedSizeRecvByteBufferAllocator(capacity: 256 * 1024)
    /// Large write watermarks so a lane can queue many 256 KiB+ WRITE payloads.
    /// Kernel socket buffers large enough for several 256 KiB payloads, so each read and
    /// write system call moves more.
    static let socketBufferBytes: ChannelOptions.Types.SocketOption.Value = 4 * 1024 * 1024
    static let writeWaterMark = ChannelOptions.Types.WriteBufferWaterMark(low: 8 * 1024 * 1024, high: 32 * 1024 * 1024)

    static func open(_ uri: NBDURI, group: any EventLoopGroup, timeout: TimeAmount) async throws -> (any Channel, NIOLoopBound<NBDClientHandler>) {
        let bootstrap = ClientBootstrap(group: group)
            .connectTimeout(timeout)
            .channelOption(.recvAllocator, value: receiveAllocator)
            .channelOption(.writeBufferWaterMark, value: writeWaterMark)
            .channelOption(.allowRemoteHalfClosure, value: false)
            .channelOption(.socketOption(.so_rcvbuf), value: socketBufferBytes)
            .channelOption(.socketOption(.so_sndbuf), value: socketBufferBytes)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NBDClientHandler())
                }
            }
        let channel: any Channel
        do {
            switch uri.transport {
            case .unix(let path):
                channel = try await bootstrap.connect(unixDomainSocketPath: path).get()
            case .tcp(let host, let port):
                channel = try await bootstrap.connect(host: host, port: port).get()
            }
        } catch {
            throw NBDError.connectFailed(endpoint: uri.endpointDescription, reason: describe(error))
        }
        let handler = try await channel.eventLoop.submit {
            NIOLoopBound(try channel.pipeline.syncOperations.handler(type: NBDClientHandler.self), eventLoop: channel.eventLoop)
        }.get()
        return (channel, handler)
    }

    /// A short reason for a connect failure: the system's words for an errno.
    static func describe(_ error: any Error) -> String {
        if let ioError = error as? IOError {
            return String(cString: strerror(ioError.errnoCode))
        }
        if let connectionError = error as? NIOConnectionError {
            if let first = connectionError.connectionErrors.first {
                return describe(first.error)
            }
            if let dnsError = connectionError.dnsAError ?? connectionError.dnsAAAAError {
                return "cannot resolve host: \(dnsError)"
            }
        }
        if error is ChannelError, case ChannelError.connectTimeout = error as! ChannelError {
            return "connection timed out"
        }
        return "\(error)"
    }
}
