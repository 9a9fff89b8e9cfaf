/// The dashboard's refresh interval steps: `<` and `>` move between them.
public enum RefreshInterval {
    /// 10 Hz down to one frame every 2 s; the default is 250 ms (4 Hz).
    public static let steps: [Duration] = [.milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2)]
    public static let `default`: Duration = .milliseconds(250)
    public static let minimum: Duration = .milliseconds(100)
    public static let maximum: Duration = .seconds(2)

    /// The next longer step after `current` (at most `maximum`).
    public static func slower(than current: Duration) -> Duration {
        steps.first { $0 > current } ?? maximum
    }

    /// The next shorter step before `current` (at least `minimum`).
    public static func faster(than current: Duration) -> Duration {
        steps.last { $0 < current } ?? minimum
    }

    /// `current` kept within the bounds.
    public static func clamped(_ current: Duration) -> Duration {
        min(max(current, minimum), maximum)
    }
}
