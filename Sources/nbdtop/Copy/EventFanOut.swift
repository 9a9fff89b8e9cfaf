import NBDCopy
import Synchronization

/// Keeps copy events for the dashboard until its loop takes them.
///
/// The engine publishes one event stream; the session reads it and writes JSON lines at
/// once, and the dashboard, which draws on its own schedule, drains this buffer.
final class EventBuffer: Sendable {
    private let pending = Mutex<[(CopyEvent, Duration)]>([])

    func append(_ event: CopyEvent, at elapsed: Duration) {
        pending.withLock { $0.append((event, elapsed)) }
    }

    func drain() -> [(CopyEvent, Duration)] {
        pending.withLock { events in
            defer { events = [] }
            return events
        }
    }
}
