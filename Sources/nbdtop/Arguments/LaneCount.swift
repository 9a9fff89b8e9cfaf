import ArgumentParser

/// `-C`'s value: `auto` (the lane count is tuned while copying) or a fixed number of lanes.
enum LaneCount: ExpressibleByArgument, Sendable, Equatable {
    case auto
    case fixed(Int)

    /// Lanes an auto copy starts with, before tuning (nbdcopy's default count).
    static let autoStart = 4

    init?(argument: String) {
        if argument == "auto" {
            self = .auto
        } else if let count = Int(argument), count >= 1 {
            self = .fixed(count)
        } else {
            return nil
        }
    }

    var defaultValueDescription: String {
        switch self {
        case .auto: return "auto"
        case .fixed(let count): return "\(count)"
        }
    }
}
