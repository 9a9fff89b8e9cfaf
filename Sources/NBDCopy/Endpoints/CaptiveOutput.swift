import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
#if canImport(Glibc)
import Glibc
#endif

/// A captive server's stdout and stderr, read from a pipe on an event loop: passed through
/// to nbdtop's stderr as it comes, with the last few KiB kept, so that a server that dies
/// can be reported with what it last said.
final class CaptiveOutput: Sendable {
    /// How much of the end of the output is kept.
    static let keptBytes = 4096

    private let tail = NIOLockedValueBox<[UInt8]>([])
    /// Every writer has closed the pipe, and all it said has been read.
    private let ended = NIOLockedValueBox(false)

    /// Reads `descriptor` (a pipe's read end, which this takes over) until the server and
    /// everything it started have closed it.
    init(readingFrom descriptor: Int32, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        let tail = self.tail, ended = self.ended
        let started = NIOPipeBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Forwarder(tail: tail))
                }
            }
            .takingOwnershipOfDescriptor(input: descriptor)
        started.whenComplete { result in
            switch result {
            case .success(let channel): channel.closeFuture.whenComplete { _ in ended.withLockedValue { $0 = true } }
            case .failure:
                _ = Glibc.close(descriptor)
                ended.withLockedValue { $0 = true }
            }
        }
    }

    /// Waits, up to `timeout`, until the pipe's end has been read: a server that has exited
    /// may have written its last lines a moment before, still unread.
    func waitForEnd(timeout: Duration) async {
        await pollUntil(every: .milliseconds(10), timeout: timeout) { ended.withLockedValue { $0 } }
    }

    /// The last `count` non-empty lines, oldest first.
    func lastLines(_ count: Int) -> [String] {
        let text = tail.withLockedValue { String(decoding: $0, as: UTF8.self) }
        return text.split(separator: "\n", omittingEmptySubsequences: true).suffix(count).map(String.init)
    }

    /// Writes what arrives to stderr and keeps the end of it.
    private final class Forwarder: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer

        private let tail: NIOLockedValueBox<[UInt8]>

        init(tail: NIOLockedValueBox<[UInt8]>) {
            self.tail = tail
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let bytes = unwrapInboundIn(data)
            bytes.withUnsafeReadableBytes { raw in
                var offset = 0
                // Short writes and EINTR: stderr is a terminal or a file; a failure drops the rest.
                while offset < raw.count {
                    let written = write(2, raw.baseAddress! + offset, raw.count - offset)
                    if written > 0 { offset += written } else if written < 0 && errno == EINTR { continue } else { break }
                }
            }
            tail.withLockedValue { kept in
                kept.append(contentsOf: bytes.readableBytesView)
                if kept.count > CaptiveOutput.keptBytes { kept.removeFirst(kept.count - CaptiveOutput.keptBytes) }
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }
}
