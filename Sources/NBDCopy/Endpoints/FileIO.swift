import NBD
import NIOCore
import Synchronization
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// The blocking operations on a file, run on the thread pool.
final class FileIO: Sendable {
    let path: String
    let kind: FileEndpoint.Kind
    /// The size when opened; reads beyond it are refused.
    let size: UInt64
    let identity: FileIdentity
    let descriptor: SharedDescriptor
    /// Whether `identity` is registered in `OpenSources` (until closed).
    private let registeredAsSource: Mutex<Bool>

    /// Writes of zeroes (when the file system cannot zero a range) go in pieces of this size.
    static let zeroChunk = 1 << 20

    init(path: String, kind: FileEndpoint.Kind, size: UInt64, identity: FileIdentity, isSource: Bool,
         descriptor: SharedDescriptor) {
        self.path = path
        self.kind = kind
        self.size = size
        self.identity = identity
        self.descriptor = descriptor
        self.registeredAsSource = Mutex(isSource)
        if isSource { OpenSources.add(identity) }
    }

    deinit {
        unregister()
    }

    /// Closes the descriptor (once nothing uses it) and forgets the file as a source.
    func close() {
        descriptor.close()
        unregister()
    }

    private func unregister() {
        let wasRegistered = registeredAsSource.withLock { registered in
            defer { registered = false }
            return registered
        }
        if wasRegistered { OpenSources.remove(identity) }
    }

    func closedError() -> EndpointError {
        EndpointError(.connection, "\(path): the file is closed")
    }

    private func failure(_ operation: String, offset: UInt64, _ error: any Error) -> EndpointError {
        if let endpointError = error as? EndpointError { return endpointError }
        return EndpointError(.request, "\(path): \(operation) at offset \(offset) failed: \(systemErrorText(error))",
                             errno: (error as? Errno).map { NBDErrno(rawValue: UInt32(bitPattern: $0.rawValue)) })
    }

    /// Reads exactly `length` bytes at `offset` (looping on short reads).
    func read(offset: UInt64, length: UInt32) throws -> ByteBuffer {
        let count = Int(length)
        guard offset <= size, UInt64(count) <= size - offset else {
            throw EndpointError(.request,
                                "\(path): read of \(count) bytes at offset \(offset) goes beyond the end of the file (\(size) bytes)")
        }
        var buffer = ByteBufferAllocator().buffer(capacity: count)
        guard count > 0 else { return buffer }
        _ = try descriptor.use(closedError: closedError) { fd in
            try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { raw in
                var done = 0
                while done < count {
                    let position = offset + UInt64(done)
                    let got: Int
                    do {
                        got = try fd.read(fromAbsoluteOffset: Int64(position),
                                          into: UnsafeMutableRawBufferPointer(rebasing: raw[done..<count]))
                    } catch {
                        throw failure("read of \(count - done) bytes", offset: position, error)
                    }
                    guard got > 0 else {
                        throw EndpointError(.request, "\(path): read at offset \(position) reached the end of the file, "
                                            + "which should be \(size) bytes long (did it shrink during the copy?)")
                    }
                    done += got
                }
                return count
            }
        }
        return buffer
    }

    /// Writes the pieces back to back from `offset` (looping on short writes).
    func write(_ pieces: [ByteBuffer], at offset: UInt64) throws {
        try descriptor.use(closedError: closedError) { fd in
            var position = offset
            for piece in pieces {
                try piece.withUnsafeReadableBytes { raw in
                    try writeAll(fd, raw, at: position)
                }
                position += UInt64(piece.readableBytes)
            }
        }
    }

    private func writeAll(_ fd: SystemFileDescriptor, _ raw: UnsafeRawBufferPointer, at offset: UInt64) throws {
        var done = 0
        while done < raw.count {
            let position = offset + UInt64(done)
            do {
                let wrote = try fd.write(toAbsoluteOffset: Int64(position), UnsafeRawBufferPointer(rebasing: raw[done...]))
                guard wrote > 0 else { throw Errno.ioError }
                done += wrote
            } catch {
                throw failure("write of \(raw.count - done) bytes", offset: position, error)
            }
        }
    }

    /// Makes the range read as zeroes: punches a hole (or, with `allocate`, zeroes it in
    /// place), and writes zeroes when the file system or device cannot.
    func zero(offset: UInt64, length: UInt64, allocate: Bool) throws {
        guard length > 0 else { return }
        try descriptor.use(closedError: closedError) { fd in
            let modes = allocate
                ? [LinuxIO.fallocZeroRange | LinuxIO.fallocKeepSize]
                : [LinuxIO.fallocPunchHole | LinuxIO.fallocKeepSize, LinuxIO.fallocZeroRange | LinuxIO.fallocKeepSize]
            var zeroed = false
            for mode in modes {
                if LinuxIO.fallocate(fd.rawValue, mode: mode, offset: Int64(offset), length: Int64(length)) == 0 {
                    zeroed = true
                    break
                }
                let code = errno
                // Not supported here (or, for a device, not at this alignment): try the next way.
                guard code == EOPNOTSUPP || code == ENOSYS || code == EINVAL || code == ENODEV else {
                    let operation = mode & LinuxIO.fallocPunchHole != 0 ? "punching a hole of" : "zeroing"
                    throw failure("\(operation) \(length) bytes", offset: offset, Errno(rawValue: code))
                }
            }
            if zeroed {
                // Zeroing keeps the size; a range beyond the end must still extend the file.
                // One zero byte at the end extends it without ever shrinking it.
                if kind == .regularFile && offset + length > size {
                    let zeroByte: [UInt8] = [0]
                    try zeroByte.withUnsafeBytes { try writeAll(fd, $0, at: offset + length - 1) }
                }
                return
            }
            let chunk = [UInt8](repeating: 0, count: Int(min(length, UInt64(Self.zeroChunk))))
            try chunk.withUnsafeBytes { zeroes in
                var position = offset
                let end = offset + length
                while position < end {
                    let count = Int(min(UInt64(zeroes.count), end - position))
                    try writeAll(fd, UnsafeRawBufferPointer(rebasing: zeroes[..<count]), at: position)
                    position += UInt64(count)
                }
            }
        }
    }

    /// Data and hole ranges from `offset` up to `length` bytes (and never beyond the end),
    /// from SEEK_DATA and SEEK_HOLE. Holes read as zeroes; data ranges are not checked.
    func extents(offset: UInt64, length: UInt64) throws -> [ImageExtent] {
        let end = min(offset + length, size)
        guard offset < end else { return [] }
        return try descriptor.use(closedError: closedError) { fd in
            var extents: [ImageExtent] = []
            func add(_ start: UInt64, _ stop: UInt64, isZero: Bool) {
                guard stop > start else { return }
                if let last = extents.last, last.isZero == isZero, last.end == start {
                    extents[extents.count - 1].length += stop - start
                } else {
                    extents.append(ImageExtent(offset: start, length: stop - start, isZero: isZero))
                }
            }
            var position = offset
            while position < end {
                let data: UInt64
                do {
                    data = UInt64(try fd.seek(offset: Int64(position), from: .init(rawValue: LinuxIO.seekData)))
                } catch Errno.noSuchAddressOrDevice {
                    // No data from here to the end of the file: the rest is a hole.
                    add(position, end, isZero: true)
                    break
                } catch Errno.invalidArgument {
                    // The file system cannot tell: report data.
                    add(position, end, isZero: false)
                    break
                } catch {
                    throw failure("SEEK_DATA", offset: position, error)
                }
                if data > position {
                    add(position, min(data, end), isZero: true)
                    position = min(data, end)
                    continue
                }
                let hole: UInt64
                do {
                    hole = UInt64(try fd.seek(offset: Int64(position), from: .init(rawValue: LinuxIO.seekHole)))
                } catch Errno.noSuchAddressOrDevice {
                    // The file shrank under us; what is left reads as zero.
                    add(position, end, isZero: true)
                    break
                } catch {
                    throw failure("SEEK_HOLE", offset: position, error)
                }
                // The hole at the end of a file starts at its size; never go backwards.
                let stop = min(max(hole, position + 1), end)
                add(position, stop, isZero: false)
                position = stop
            }
            return extents
        }
    }

    /// fsync.
    func synchronize() throws {
        try descriptor.use(closedError: closedError) { fd in
            while fsync(fd.rawValue) != 0 {
                let code = errno
                if code == EINTR { continue }
                throw EndpointError(.request, "\(path): fsync failed: \(systemErrorText(code))",
                                    errno: NBDErrno(rawValue: UInt32(bitPattern: code)))
            }
        }
    }
}
