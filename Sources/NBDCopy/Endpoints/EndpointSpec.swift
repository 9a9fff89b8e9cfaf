import NBD
import NIOCore

/// What the user named as a source or destination, before anything is opened.
///
/// `nbd://…`, `nbd+unix://…` (and `nbds…`, refused until TLS exists) are NBD exports;
/// `null:` discards; `-` is stdin or stdout; `[ CMD ARGS… ]` is a captive server that
/// nbdtop starts with socket activation; anything else is a local file or block device, or,
/// when it names a character device or FIFO (`/dev/null`, `/dev/zero`), a stream like `-`.
public enum EndpointSpec: Sendable, Equatable, CustomStringConvertible {
    case nbd(NBDURI)
    case file(String)
    case null
    case pipe
    case captive([String])

    /// Splits the command line's endpoint words into specs: `[ nbdkit -r pattern 1G ] null:`.
    public static func parseAll(_ words: [String]) throws(EndpointSpecError) -> [EndpointSpec] {
        var specs: [EndpointSpec] = []
        var index = 0
        while index < words.count {
            let word = words[index]
            if word == "[" {
                guard let close = words[index...].firstIndex(of: "]") else {
                    throw EndpointSpecError("'[' starts a captive server command but no ']' ends it")
                }
                let command = Array(words[(index + 1)..<close])
                guard !command.isEmpty else { throw EndpointSpecError("'[ ]' names no server command") }
                specs.append(.captive(command))
                index = close + 1
            } else if word == "]" {
                throw EndpointSpecError("']' without '['")
            } else {
                specs.append(try parse(word))
                index += 1
            }
        }
        return specs
    }

    public static func parse(_ word: String) throws(EndpointSpecError) -> EndpointSpec {
        if word == "null:" { return .null }
        if word == "-" { return .pipe }
        if word.contains("://") {
            do {
                return .nbd(try NBDURI.parse(word))
            } catch {
                throw EndpointSpecError("\(error)")
            }
        }
        guard !word.isEmpty else { throw EndpointSpecError("empty endpoint") }
        return .file(word)
    }

    public var description: String {
        switch self {
        case .nbd(let uri): return uri.text
        case .file(let path): return path
        case .null: return "null:"
        case .pipe: return "-"
        case .captive(let command): return "[ " + command.joined(separator: " ") + " ]"
        }
    }

    /// Opens this spec as the source, on `eventLoop`.
    public func openSource(on eventLoop: any EventLoop) async throws -> any CopyEndpoint {
        switch self {
        case .nbd(let uri):
            return try await NBDEndpoint.open(uri, on: eventLoop)
        case .file(let path):
            if let stream = try PipeEndpoint.openStream(path: path, direction: .source, size: nil) { return stream }
            return try FileEndpoint.open(path: path, forWriting: false, createWithSize: nil)
        case .null:
            throw EndpointSpecError("null: can only be a destination")
        case .pipe:
            return PipeEndpoint.stdin()
        case .captive(let command):
            return try await Self.openCaptive(command, description: description, on: eventLoop)
        }
    }

    /// Opens this spec as the destination of a `sourceSize`-byte image, on `eventLoop`.
    public func openDestination(sourceSize: UInt64?, on eventLoop: any EventLoop) async throws -> any CopyEndpoint {
        switch self {
        case .nbd(let uri):
            return try await NBDEndpoint.open(uri, on: eventLoop)
        case .file(let path):
            if let stream = try PipeEndpoint.openStream(path: path, direction: .destination, size: sourceSize) {
                return stream
            }
            return try FileEndpoint.open(path: path, forWriting: true, createWithSize: sourceSize)
        case .null:
            return NullEndpoint(size: sourceSize ?? UInt64.max)
        case .pipe:
            return PipeEndpoint.stdout(size: sourceSize)
        case .captive(let command):
            return try await Self.openCaptive(command, description: description, on: eventLoop)
        }
    }

    private static func openCaptive(_ command: [String], description: String, on eventLoop: any EventLoop) async throws -> any CopyEndpoint {
        let server = try CaptiveServer.start(command)
        do {
            return try await NBDEndpoint.open(server.uri, displayName: description, on: eventLoop, captive: server)
        } catch {
            let explained = await server.explain(error)
            await server.stop()
            throw explained
        }
    }
}

/// A source or destination that cannot be used as given.
public struct EndpointSpecError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
