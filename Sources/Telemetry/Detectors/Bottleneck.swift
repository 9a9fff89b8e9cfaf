/// What limits a copy now, in words, with its evidence: the `bottleneck:` line of the
/// dashboard and the `bottleneck` object of `--stats-json` samples.
///
/// The verdict is a pure function of the recent samples (`Bottleneck.verdict(history:)`);
/// the rules are written down in docs/telemetry.md, in the order they are tried.
public struct Bottleneck: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        /// The user paused the transfer.
        case paused
        /// The source server: requests wait there (latency, stalls, in-order replies).
        case source
        /// The destination: requests wait there.
        case destination
        /// More lanes would help, but the endpoints allow no more.
        case laneLimit = "lane_limit"
        /// nbdtop's own CPU: an event loop thread near a whole core.
        case cpu
        /// Every lane is always at its `-R` or `--queue-size` limit, and no lane can be added.
        case requestWindow = "request_window"
    }

    public var kind: Kind
    /// The evidence, one short sentence.
    public var detail: String

    public init(kind: Kind, detail: String) {
        self.kind = kind
        self.detail = detail
    }
}

/// The limits the rules compare in-flight figures against: the copy's `-R`, `--queue-size`
/// and request size.
public struct BottleneckLimits: Sendable, Equatable {
    public var requestsPerLane: Int
    public var queueSizeBytes: UInt64
    public var requestSizeBytes: UInt64

    public init(requestsPerLane: Int, queueSizeBytes: UInt64, requestSizeBytes: UInt64) {
        self.requestsPerLane = max(1, requestsPerLane)
        self.queueSizeBytes = queueSizeBytes
        self.requestSizeBytes = requestSizeBytes
    }
}

/// The figures of one snapshot that the rules look at.
public struct BottleneckSample: Sendable, Equatable {
    public var elapsed: Duration
    public var paused: Bool
    public var lanes: Int
    public var maximumLanes: Int
    public var laneLimitReason: String
    /// Requests in flight on the open connections of each side.
    public var sourceInFlight: Int
    public var destinationInFlight: Int
    /// Open lanes, and those whose window is full (at `-R` requests, or without room for
    /// one more request under `--queue-size`).
    public var openLanes: Int
    public var lanesAtRequestLimit: Int
    public var lanesAtByteLimit: Int
    /// Open connections of each side, and those stalled now.
    public var sourceConnections: Int
    public var destinationConnections: Int
    public var sourceStalledNow: Int
    public var destinationStalledNow: Int
    /// Stalled time summed over every connection of a side, since the start.
    public var sourceStalledTime: Duration
    public var destinationStalledTime: Duration
    /// The largest p50 round trip among a side's open connections.
    public var sourceLatencyP50: Duration?
    public var destinationLatencyP50: Duration?
    /// The busiest event loop thread's CPU use, as a fraction of one core.
    public var eventLoopCPU: Double?
    public var limits: BottleneckLimits

    public init(_ snapshot: CopySnapshot, limits: BottleneckLimits) {
        elapsed = snapshot.elapsed
        paused = snapshot.paused
        lanes = snapshot.lanes
        maximumLanes = snapshot.maximumLanes
        laneLimitReason = snapshot.laneLimitReason
        eventLoopCPU = snapshot.eventLoopCPU
        self.limits = limits
        let open = snapshot.connections.filter { $0.state != .closed && $0.state != .failed }
        let sources = open.filter { $0.side == .source }, destinations = open.filter { $0.side == .destination }
        sourceInFlight = sources.reduce(0) { $0 + $1.inFlight }
        destinationInFlight = destinations.reduce(0) { $0 + $1.inFlight }
        sourceConnections = sources.count
        destinationConnections = destinations.count
        sourceStalledNow = sources.filter(\.stalled).count
        destinationStalledNow = destinations.filter(\.stalled).count
        let sides = snapshot.connections
        sourceStalledTime = sides.filter { $0.side == .source }.reduce(.zero) { $0 + $1.stalledTime }
        destinationStalledTime = sides.filter { $0.side == .destination }.reduce(.zero) { $0 + $1.stalledTime }
        sourceLatencyP50 = sources.compactMap(\.latencyP50).max()
        destinationLatencyP50 = destinations.compactMap(\.latencyP50).max()
        var lanesOpen = 0, atRequests = 0, atBytes = 0
        for laneID in Set(open.map(\.laneID)) {
            let lane = open.filter { $0.laneID == laneID }
            lanesOpen += 1
            let requests = lane.reduce(0) { $0 + $1.inFlight }
            let bytes = lane.reduce(UInt64(0)) { $0 + $1.inFlightBytes }
            if requests >= limits.requestsPerLane {
                atRequests += 1
            } else if bytes + limits.requestSizeBytes > limits.queueSizeBytes {
                atBytes += 1
            }
        }
        openLanes = lanesOpen
        lanesAtRequestLimit = atRequests
        lanesAtByteLimit = atBytes
    }
}

extension Bottleneck {
    /// How far back the rules look.
    public static let window = Duration.seconds(10)
    /// Less history than this gives no verdict yet (except paused).
    public static let minimumHistory = Duration.seconds(2)
    /// An event loop at or above this share of a core is the limit.
    public static let cpuLimit = 0.9
    /// A side stalled for at least this share of the window (per connection) is stalling.
    public static let stalledShare = 0.05
    /// Windows full in at least this share of the samples are "always" full (a pipeline
    /// still filling in the first samples must not hide it).
    public static let fullWindowShare = 0.75

    /// The verdict over `history`, oldest first, the last being now; nil while there is
    /// too little to judge by (less than `minimumHistory`, or nothing in flight).
    public static func verdict(history: [BottleneckSample]) -> Bottleneck? {
        guard let now = history.last else { return nil }
        if now.paused { return Bottleneck(kind: .paused, detail: "paused: nothing new is sent until resumed") }
        let recent = history.filter { now.elapsed - $0.elapsed <= window && !$0.paused }
        guard let first = recent.first, now.elapsed - first.elapsed >= minimumHistory else { return nil }
        let span = seconds(now.elapsed - first.elapsed)

        let cpuReadings = recent.compactMap(\.eventLoopCPU)
        if !cpuReadings.isEmpty {
            let cpu = cpuReadings.reduce(0, +) / Double(cpuReadings.count)
            if cpu >= cpuLimit {
                return Bottleneck(kind: .cpu, detail: "an event loop thread uses \(percent(cpu)) of a core: nbdtop itself is the limit")
            }
        }

        let sourceWaiting = recent.reduce(0) { $0 + $1.sourceInFlight }
        let destinationWaiting = recent.reduce(0) { $0 + $1.destinationInFlight }
        guard sourceWaiting + destinationWaiting > 0 else { return nil }
        // Requests spend their time where they wait (Little's law): the side holding most of
        // the requests in flight is the slower one.
        let side: ConnectionSide = sourceWaiting >= destinationWaiting ? .source : .destination
        let kind: Kind = side == .source ? .source : .destination
        let name = side == .source ? "source" : "destination"
        let connections = max(1, side == .source ? now.sourceConnections : now.destinationConnections)
        let stalledTime = side == .source ? now.sourceStalledTime - first.sourceStalledTime
                                          : now.destinationStalledTime - first.destinationStalledTime
        let stalledFraction = seconds(stalledTime) / (span * Double(connections))
        let stalledNow = side == .source ? now.sourceStalledNow : now.destinationStalledNow
        let latency = (side == .source ? now.sourceLatencyP50 : now.destinationLatencyP50).map { " p50 " + milliseconds($0) } ?? ""
        let canAddLanes = now.lanes < now.maximumLanes
        let oneLaneOnly = now.maximumLanes <= 1

        if stalledFraction >= Self.stalledShare || stalledNow > 0 {
            let evidence = "\(name) stalls \(percent(stalledFraction)) of the time (in-order replies)"
            if canAddLanes { return Bottleneck(kind: kind, detail: evidence + ": more lanes help") }
            if oneLaneOnly { return Bottleneck(kind: .laneLimit, detail: "\(laneLimit(now)): 1 lane; \(evidence)") }
            return Bottleneck(kind: kind, detail: evidence + "; all \(now.maximumLanes) lanes in use")
        }

        // Moments with nothing in flight at all (before the first request, between lanes)
        // say nothing about the window.
        let busy = recent.filter { $0.sourceInFlight + $0.destinationInFlight > 0 }
        let samples = Double(max(1, busy.count))
        let atRequests = busy.reduce(0.0) { $0 + share($1.lanesAtRequestLimit, of: $1.openLanes) } / samples
        let atBytes = busy.reduce(0.0) { $0 + share($1.lanesAtByteLimit, of: $1.openLanes) } / samples
        if atRequests + atBytes >= fullWindowShare {
            let limit = atRequests >= atBytes ? "-R \(now.limits.requestsPerLane)"
                                              : "--queue-size \(mebibytes(now.limits.queueSizeBytes))"
            let evidence = "requests always at the \(limit) limit, waiting on the \(name)\(latency)"
            if canAddLanes { return Bottleneck(kind: kind, detail: evidence + ": more lanes help") }
            if oneLaneOnly { return Bottleneck(kind: .laneLimit, detail: "\(laneLimit(now)): 1 lane; \(evidence)") }
            return Bottleneck(kind: .requestWindow, detail: evidence + "; all \(now.maximumLanes) lanes in use: a larger "
                              + (atRequests >= atBytes ? "-R" : "--queue-size") + " may help")
        }
        return Bottleneck(kind: kind, detail: "requests wait on the \(name)\(latency); the window has room")
    }

    /// The lane limit's reason without its `source: ` or `destination: ` prefix.
    private static func laneLimit(_ sample: BottleneckSample) -> String {
        let reason = sample.laneLimitReason
        for prefix in ["source: ", "destination: "] where reason.hasPrefix(prefix) {
            return String(reason.dropFirst(prefix.count))
        }
        return reason.isEmpty ? "one connection only" : reason
    }

    private static func share(_ part: Int, of whole: Int) -> Double { whole > 0 ? Double(part) / Double(whole) : 0 }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    private static func percent(_ fraction: Double) -> String { "\(Int((min(1, max(0, fraction)) * 100).rounded()))%" }

    private static func milliseconds(_ duration: Duration) -> String {
        let value = seconds(duration) * 1000
        return value >= 100 ? "\(Int(value.rounded()))ms" : "\((value * 10).rounded() / 10)ms"
    }

    private static func mebibytes(_ bytes: UInt64) -> String {
        bytes % (1 << 20) == 0 ? "\(bytes >> 20)M" : "\(bytes >> 10)K"
    }
}

/// Keeps the recent samples the rules need and gives the verdict for each new snapshot;
/// one per copy, fed by every snapshot whatever its caller (the dashboard, the sampler).
public struct BottleneckTracker: Sendable {
    /// Samples closer together than this are not kept (the verdict still uses the newest).
    public static let spacing = Duration.milliseconds(500)

    public let limits: BottleneckLimits
    private var history: [BottleneckSample] = []

    public init(limits: BottleneckLimits) {
        self.limits = limits
    }

    /// The verdict with `snapshot` as now.
    public mutating func observe(_ snapshot: CopySnapshot) -> Bottleneck? {
        let sample = BottleneckSample(snapshot, limits: limits)
        history.removeAll { sample.elapsed - $0.elapsed > Bottleneck.window || $0.elapsed > sample.elapsed }
        if let last = history.last, sample.elapsed - last.elapsed < Self.spacing {
            return Bottleneck.verdict(history: history + [sample])
        }
        history.append(sample)
        return Bottleneck.verdict(history: history)
    }
}
