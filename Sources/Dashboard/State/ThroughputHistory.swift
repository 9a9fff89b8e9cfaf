import Telemetry

/// The copy's aggregate rate over the whole transfer, for the throughput chart, in a
/// bounded amount of memory: time is cut into buckets of `bucketWidth`; when `capacity`
/// buckets are used, neighbours merge and the width doubles, so the history always spans
/// the whole transfer at the finest resolution that fits.
public struct ThroughputHistory: Sendable, Equatable {
    /// One stretch of time: the mean rate of the snapshots in it, and whether any
    /// connection was stalled in one of them.
    public struct Bucket: Sendable, Equatable {
        public var bytesPerSecond: Double
        public var stalled: Bool
        var samples: Int
    }

    public static let capacity = 1024
    public private(set) var bucketWidth: Duration
    /// Buckets from the start, oldest first; bucket `i` covers `[i, i+1) × bucketWidth`.
    public private(set) var buckets: [Bucket] = []
    /// The newest time observed.
    public private(set) var end: Duration = .zero

    public init(bucketWidth: Duration = .milliseconds(250)) {
        self.bucketWidth = bucketWidth
    }

    /// Adds the copy's rate at `snapshot.elapsed`; a snapshot older than the newest one
    /// (a frozen display, an attach that went back) is ignored.
    public mutating func observe(_ snapshot: CopySnapshot) {
        observe(elapsed: snapshot.elapsed, bytesPerSecond: snapshot.bytesPerSecond,
                stalled: snapshot.connections.contains(where: \.stalled))
    }

    /// Fills an empty history from the per-second rates `snapshot`'s destination
    /// connections carry (the last 60 s, oldest first): an attached dashboard's chart then
    /// starts with what happened before it attached. Does nothing once anything was observed.
    public mutating func seed(from snapshot: CopySnapshot) {
        guard buckets.isEmpty else { return }
        let histories = snapshot.connections.filter { $0.side == .destination }.map(\.rateHistory)
        let seconds = histories.map(\.count).max() ?? 0
        guard seconds > 0 else { return }
        for index in 0..<seconds {
            // Histories end at the same second; shorter ones started later.
            let rate = histories.reduce(0.0) { sum, history in
                let offset = index - (seconds - history.count)
                return sum + (offset >= 0 ? history[offset] : 0)
            }
            let elapsed = snapshot.elapsed - .seconds(seconds - index)
            if elapsed >= .zero { observe(elapsed: elapsed, bytesPerSecond: rate, stalled: false) }
        }
    }

    public mutating func observe(elapsed: Duration, bytesPerSecond: Double, stalled: Bool) {
        guard elapsed >= end else { return }
        end = elapsed
        var index = Int(elapsed / bucketWidth)
        while index >= Self.capacity {
            compress()
            index = Int(elapsed / bucketWidth)
        }
        while buckets.count <= index {
            // A gap (no snapshot in a bucket) repeats the previous rate rather than reading as zero.
            let previous = buckets.last.map { Bucket(bytesPerSecond: $0.bytesPerSecond, stalled: false, samples: 0) }
            buckets.append(previous ?? Bucket(bytesPerSecond: 0, stalled: false, samples: 0))
        }
        var bucket = buckets[index]
        let rate = bytesPerSecond.isFinite ? max(0, bytesPerSecond) : 0
        bucket.bytesPerSecond = bucket.samples == 0 ? rate
            : (bucket.bytesPerSecond * Double(bucket.samples) + rate) / Double(bucket.samples + 1)
        bucket.samples += 1
        bucket.stalled = bucket.stalled || stalled
        buckets[index] = bucket
    }

    /// Halves the resolution: every two neighbouring buckets become one.
    private mutating func compress() {
        bucketWidth = bucketWidth * 2
        buckets = stride(from: 0, to: buckets.count, by: 2).map { start in
            let pair = buckets[start..<min(start + 2, buckets.count)]
            let samples = pair.reduce(0) { $0 + max(1, $1.samples) }
            let rate = pair.reduce(0.0) { $0 + $1.bytesPerSecond * Double(max(1, $1.samples)) } / Double(samples)
            return Bucket(bytesPerSecond: rate, stalled: pair.contains(where: \.stalled), samples: samples)
        }
    }

    /// The history resampled to `columns` columns spanning `[0, end]`: each column's mean
    /// rate and whether it holds a stall. Empty before anything was observed.
    public func columns(_ columns: Int) -> [Bucket] {
        guard columns > 0, !buckets.isEmpty else { return [] }
        let count = buckets.count
        return (0..<columns).map { column in
            let first = column * count / columns
            let last = max(first + 1, (column + 1) * count / columns)
            let slice = buckets[min(first, count - 1)..<min(last, count)]
            let rate = slice.reduce(0.0) { $0 + $1.bytesPerSecond } / Double(slice.count)
            return Bucket(bytesPerSecond: rate, stalled: slice.contains(where: \.stalled), samples: slice.count)
        }
    }

    /// The time the chart's right edge stands for: the end of the last bucket.
    public var span: Duration { bucketWidth * buckets.count }
}

/// A moment the chart marks: a lane added, dropped, failed or reconnected.
public struct ChartMarker: Sendable, Equatable {
    public var elapsed: Duration
    /// The glyph drawn, from `ChartMarker.table`.
    public var glyph: Character

    public init(elapsed: Duration, glyph: Character) {
        self.elapsed = elapsed
        self.glyph = glyph
    }

    /// One kind of marker: the events it stands for, its glyph and its legend word.
    public struct Kind: Sendable {
        public var glyph: Character
        public var legend: String
        public var matches: @Sendable (CopyEvent) -> Bool
    }

    /// Every kind of marker, in legend order: the one place that maps events to markers,
    /// so another event (such as an auto-tuning decision) gets a marker with one line here.
    public static let table: [Kind] = [
        Kind(glyph: "+", legend: "lane added") { if case .laneAdded = $0 { true } else { false } },
        Kind(glyph: "-", legend: "dropped") { if case .laneDropped = $0 { true } else { false } },
        Kind(glyph: "x", legend: "failed") { if case .laneFailed = $0 { true } else { false } },
        Kind(glyph: "r", legend: "reconnected") { if case .laneReconnected = $0 { true } else { false } },
        // Lanes the tuner adds or drops already show as + and -; its other step is the request size.
        Kind(glyph: "s", legend: "request size") { event in
            if case .auto(let decision) = event { decision.requestSizeBefore != decision.requestSizeAfter } else { false }
        },
    ]

    /// The marker for `event` at `elapsed`, when it is one the chart marks.
    public init?(_ event: CopyEvent, at elapsed: Duration) {
        guard let kind = Self.table.first(where: { $0.matches(event) }) else { return nil }
        self.init(elapsed: elapsed, glyph: kind.glyph)
    }
}
