import NIOCore
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// What one write puts into the pipe.
enum PipeChunk: Sendable {
    case bytes([ByteBuffer])
    case zeros(UInt64)
}

/// The blocking halves of pipe I/O, run on the thread pool.
enum PipeIO {
    /// Reads up to `count` bytes; fewer only at the end of the input.
    static func read(_ descriptor: SharedDescriptor, count: Int, at offset: UInt64, name: String,
                     closedError: () -> EndpointError) throws -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: count)
        guard count > 0 else { return buffer }
        _ = try descriptor.use(closedError: closedError) { fd in
            try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { raw in
                var done = 0
                while done < count {
                    do {
                        let got = try fd.read(into: UnsafeMutableRawBufferPointer(rebasing: raw[done..<count]))
                        if got == 0 { break }
                        done += got
                    } catch Errno.resourceTemporarilyUnavailable {
                        LinuxIO.waitUntilReady(fd.rawValue, events: Int16(POLLIN))
                    } catch {
                        throw EndpointError(.connection, "\(name): read at offset \(offset + UInt64(done)) failed: "
                                            + systemErrorText(error))
                    }
                }
                return done
            }
        }
        return buffer
    }

    /// Writes the chunks back to back, all of them.
    static func write(_ descriptor: SharedDescriptor, _ chunks: [PipeChunk], at offset: UInt64, name: String,
                      closedError: () -> EndpointError) throws {
        try descriptor.use(closedError: closedError) { fd in
            var position = offset
            for chunk in chunks {
                switch chunk {
                case .bytes(let pieces):
                    for piece in pieces {
                        try piece.withUnsafeReadableBytes { try writeAll(fd, $0, at: position, name: name) }
                        position += UInt64(piece.readableBytes)
                    }
                case .zeros(let length):
                    let zeroes = [UInt8](repeating: 0, count: Int(min(length, 1 << 20)))
                    try zeroes.withUnsafeBytes { raw in
                        var left = length
                        while left > 0 {
                            let count = Int(min(left, UInt64(raw.count)))
                            try writeAll(fd, UnsafeRawBufferPointer(rebasing: raw[..<count]), at: position, name: name)
                            position += UInt64(count)
                            left -= UInt64(count)
                        }
                    }
                }
            }
        }
    }

    private static func writeAll(_ fd: SystemFileDescriptor, _ raw: UnsafeRawBufferPointer, at offset: UInt64,
                                 name: String) throws {
        var done = 0
        while done < raw.count {
            do {
                done += try fd.write(UnsafeRawBufferPointer(rebasing: raw[done...]))
            } catch Errno.resourceTemporarilyUnavailable {
                LinuxIO.waitUntilReady(fd.rawValue, events: Int16(POLLOUT))
            } catch {
                throw EndpointError(.connection, "\(name): write of \(raw.count - done) bytes at offset "
                                    + "\(offset + UInt64(done)) failed: \(systemErrorText(error))")
            }
        }
    }
}
