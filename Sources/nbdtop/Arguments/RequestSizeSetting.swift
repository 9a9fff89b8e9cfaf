import ArgumentParser

/// `--request-size`'s value: `auto` (tuned while copying) or a fixed size (`1M`, `4096`),
/// parsed once so that a bad value is reported against this option.
enum RequestSizeSetting: ExpressibleByArgument, Sendable, Equatable {
    case auto
    case fixed(ByteCount)

    init?(argument: String) {
        if argument == "auto" {
            self = .auto
        } else if let size = ByteCount(argument: argument) {
            self = .fixed(size)
        } else {
            return nil
        }
    }

    var defaultValueDescription: String {
        switch self {
        case .auto: return "auto"
        case .fixed(let size): return size.defaultValueDescription
        }
    }
}
