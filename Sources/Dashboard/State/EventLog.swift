import Telemetry

/// How an event-pane line is coloured.
public enum EventSeverity: Sendable, Equatable {
    case info, ok, warning, error
}

/// One line of the event pane.
public struct EventLogEntry: Sendable, Equatable {
    /// Time since the copy started.
    public var elapsed: Duration
    public var text: String
    public var severity: EventSeverity

    public init(elapsed: Duration, text: String, severity: EventSeverity) {
        self.elapsed = elapsed
        self.text = text
        self.severity = severity
    }

    /// The event pane's wording of an engine event.
    public init(_ event: CopyEvent, elapsed: Duration) {
        self.elapsed = elapsed
        switch event {
        case .laneAdded(let id):
            (text, severity) = ("lane \(id) added", .ok)
        case .laneDropped(let id):
            (text, severity) = ("lane \(id) dropped", .info)
        case .laneFailed(let id, let reason):
            (text, severity) = ("lane \(id) failed: \(reason)", .error)
        case .laneRefused(let reason):
            (text, severity) = ("cannot add a lane: \(reason)", .warning)
        case .stall(let id, let side, let oldest, let held):
            (text, severity) = ("lane \(id) \(side.rawValue) head-of-line stall: oldest request \(Format.shortDuration(oldest)), "
                                + "\(held) held behind it", .warning)
        case .slowRequest(let id, let side, let operation, let offset, let length, let latency):
            (text, severity) = ("lane \(id) \(side.rawValue) slow request, not a stall: \(operation.rawValue) of "
                                + "\(Format.bytes(length)) at \(offset) took \(Format.shortDuration(latency)), others kept moving", .info)
        case .retry(let id, let side, let offset, let length, let attempt, let error):
            (text, severity) = ("lane \(id) \(side.rawValue): retrying \(Format.bytes(length)) at offset \(offset) (attempt \(attempt + 1)): \(error)", .warning)
        case .laneReconnecting(let id, let side, let attempt, let error):
            (text, severity) = ("lane \(id) \(side.rawValue) reconnecting (try \(attempt)): \(error)", .warning)
        case .laneReconnected(let id, let side):
            (text, severity) = ("lane \(id) \(side.rawValue) reconnected", .ok)
        case .paused(let paused):
            (text, severity) = (paused ? "transfer paused" : "transfer resumed", .info)
        case .auto(let decision):
            (text, severity) = ("auto: \(decision.reason)", .info)
        }
    }
}

/// The most recent event-pane lines, oldest first, at most `capacity`.
public struct EventLog: Sendable, Equatable {
    public private(set) var entries: [EventLogEntry] = []
    public let capacity: Int

    public init(capacity: Int = 200) {
        self.capacity = max(1, capacity)
    }

    public mutating func append(_ entry: EventLogEntry) {
        entries.append(entry)
        if entries.count > capacity { entries.removeFirst(entries.count - capacity) }
    }
}
