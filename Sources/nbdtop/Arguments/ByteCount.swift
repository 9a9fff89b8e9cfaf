import ArgumentParser

/// A size option's value (`256K`, `16M`, `1G`, `4096`), parsed once by the argument parser,
/// so that a bad value is reported against the option that took it.
struct ByteCount: ExpressibleByArgument, Sendable, Equatable {
    var bytes: UInt64

    init(bytes: UInt64) { self.bytes = bytes }

    init?(argument: String) {
        guard let bytes = Units.parseSize(argument) else { return nil }
        self.bytes = bytes
    }

    var defaultValueDescription: String { Units.sizeText(bytes) }
}
