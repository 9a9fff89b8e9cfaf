/// The request sizes `--request-size auto` may choose, smallest first: each a multiple of
/// both endpoints' minimum and preferred block sizes and at most their maximum and 32 MiB.
///
/// The first rung is 256 KiB (or the nearest aligned size); each next one doubles, and
/// the last is the largest aligned size under the limits, so odd maximums are reached.
/// Rungs past half of `--queue-size` (`ordinaryLargestSize`) are for servers with a fixed
/// cost per request (`ServerShape`): on light servers they never paid for their probes.
public struct RequestSizeLadder: Sendable, Equatable {
    /// The sizes, smallest first; never empty.
    public let sizes: [UInt64]
    /// Every size is a multiple of this.
    public let alignment: UInt64

    /// The largest size a climb tries before the server's shape showed a fixed cost per
    /// request: half of `--queue-size`, or the first rung.
    public let ordinaryLargestSize: UInt64

    /// The largest size the first look's fit jumps to: `--queue-size`. Past it a Python
    /// plugin already lost a third of its rate (its own buffers grow with the request).
    public let largestFittedSize: UInt64

    public static let startingSize: UInt64 = 256 << 10
    public static let largestSize: UInt64 = 32 << 20

    public init(source: BlockConstraints, destination: BlockConstraints, queueSize: UInt64) {
        let maximum = UInt64(min(source.maximum, destination.maximum))
        let minimum = UInt64(max(source.minimum, destination.minimum, 1))
        // Preferred sizes are powers of two, and so are minimums, so the larger one is a
        // multiple of every other. A preferred size past the maximum cannot be honoured.
        let preferred = UInt64(max(source.preferred, destination.preferred))
        let alignment = preferred % minimum == 0 && preferred <= maximum ? max(preferred, minimum) : minimum
        self.alignment = alignment
        let ceiling = max(alignment, Self.roundedDown(min(maximum, Self.largestSize), to: alignment))
        var size = min(ceiling, max(alignment, Self.roundedDown(Self.startingSize, to: alignment)))
        var sizes = [size]
        while size < ceiling {
            size = min(ceiling, Self.roundedDown(size * 2, to: alignment))
            sizes.append(size)
        }
        self.sizes = sizes
        let ordinary = max(queueSize / 2, Self.startingSize)
        ordinaryLargestSize = sizes.last { $0 <= ordinary } ?? sizes[0]
        largestFittedSize = sizes.last { $0 <= max(queueSize, Self.startingSize) } ?? sizes[0]
    }

    private static func roundedDown(_ value: UInt64, to alignment: UInt64) -> UInt64 {
        value - value % alignment
    }
}
