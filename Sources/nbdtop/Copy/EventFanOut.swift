import NBDCopy
import Synchronization
import Telemetry

/// Keeps copy events for the dashboard until its loop takes them.
///
/// The engine publishes one event stream; the session reads it and writes JSON lines at
/// once, and the dashboard, which draws on its own schedule, drains this buffer.
final class EventBuffer: Sendable {
    private struct State {
        var events: [(CopyEvent, Duration)] = []
        /// The dashboard is gone: nothing would drain the buffer.
        var closed = false
    }

    private let state = Mutex(State())

    /// Keeps `event`; false once the buffer is closed (the event is not kept).
    func append(_ event: CopyEvent, at elapsed: Duration) -> Bool {
        state.withLock { state in
            guard !state.closed else { return false }
            state.events.append((event, elapsed))
            return true
        }
    }

    func drain() -> [(CopyEvent, Duration)] {
        state.withLock { state in
            defer { state.events = [] }
            return state.events
        }
    }

    /// Drops what is kept and refuses later events.
    func close() {
        state.withLock { state in
            state.closed = true
            state.events = []
        }
    }
}
