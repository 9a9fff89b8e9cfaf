import Telemetry
/// A command a control client sends, one JSON object per line:
/// `{"cmd":"add_lane"}`, `{"cmd":"drop_lane","id":N}` (the newest lane when `id` is
/// absent), `{"cmd":"auto_lanes"}` (tune lanes again after a manual change), `{"cmd":"pause"}`, `{"cmd":"resume"}`, `{"cmd":"stop"}`,
/// `{"cmd":"interval","ms":N}`. `"v"` may be given and must then be 1.
public enum ControlCommand: Sendable, Equatable {
    case addLane
    case dropLane(id: Int?)
    /// Lanes are tuned automatically again (they became manual with `add_lane` or `drop_lane`).
    case autoLanes
    case pause
    case resume
    case stop
    /// Samples every `milliseconds` for the client that sent it.
    case interval(milliseconds: Int)

    /// The shortest and longest sample interval a client may ask for.
    public static let intervalRange = 100...3_600_000

    /// The command's name, as clients spell it.
    public var name: String {
        switch self {
        case .addLane: return "add_lane"
        case .dropLane: return "drop_lane"
        case .autoLanes: return "auto_lanes"
        case .pause: return "pause"
        case .resume: return "resume"
        case .stop: return "stop"
        case .interval: return "interval"
        }
    }

    /// The command as a client sends it: one JSON object, without the newline.
    public var line: String {
        var members: [(String, JSONValue)] = [("v", .int(1)), ("cmd", .string(name))]
        switch self {
        case .dropLane(let id?): members.append(("id", .int(Int64(id))))
        case .interval(let milliseconds): members.append(("ms", .int(Int64(milliseconds))))
        case .addLane, .dropLane(nil), .autoLanes, .pause, .resume, .stop: break
        }
        return JSONValue.object(members).compact
    }

    /// Reads a command from one line; throws `ControlCommandError` saying what is wrong.
    public init(line: some Collection<UInt8>) throws(ControlCommandError) {
        let value: JSONValue
        do {
            value = try JSONValue.parse(line)
        } catch {
            throw ControlCommandError("not JSON: \(error)")
        }
        guard case .object = value else { throw ControlCommandError("a command must be a JSON object") }
        if let version = value["v"], version.int != 1 {
            throw ControlCommandError("unsupported protocol version \(version.compact); this copy speaks 1")
        }
        guard let name = value["cmd"]?.string else { throw ControlCommandError("missing \"cmd\"") }
        switch name {
        case "add_lane": self = .addLane
        case "drop_lane":
            guard let id = value["id"], !id.isNull else {
                self = .dropLane(id: nil)
                return
            }
            guard let lane = id.int.flatMap({ Int(exactly: $0) }) else {
                throw ControlCommandError("\"id\" must be a lane number")
            }
            self = .dropLane(id: lane)
        case "auto_lanes": self = .autoLanes
        case "pause": self = .pause
        case "resume": self = .resume
        case "stop": self = .stop
        case "interval":
            guard let milliseconds = value["ms"]?.int.flatMap({ Int(exactly: $0) }),
                  Self.intervalRange.contains(milliseconds) else {
                throw ControlCommandError("\"ms\" must be a number of milliseconds from \(Self.intervalRange.lowerBound) to \(Self.intervalRange.upperBound)")
            }
            self = .interval(milliseconds: milliseconds)
        default:
            throw ControlCommandError("unknown command \(JSONValue.string(name).compact)")
        }
    }
}

/// Why a command line was refused, or why a command failed; sent back as
/// `{"v":1,"ok":false,"error":"..."}`.
public struct ControlCommandError: Error, Equatable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The answer to one command line.
public enum ControlReply {
    /// `{"v":1,"ok":true,"cmd":NAME}` plus what the command returns (a lane's `id`).
    public static func success(_ command: ControlCommand, _ members: [(String, JSONValue)] = []) -> String {
        JSONValue.object([("v", .int(1)), ("ok", .bool(true)), ("cmd", .string(command.name))] + members).compact
    }

    /// `{"v":1,"ok":false,"error":MESSAGE}`, with `cmd` when the command was understood.
    public static func failure(_ message: String, command: ControlCommand? = nil) -> String {
        JSONValue.object([("v", .int(1)), ("ok", .bool(false))] + (command.map { [("cmd", .string($0.name))] } ?? [])
                         + [("error", .string(message))]).compact
    }
}
