import NIOCore

/// The life of an endpoint connection whose polite close waits for its requests: open,
/// closing (with the promise `close()` handed out), or closed.
enum ConnectionLifecycle {
    case open
    case closing(EventLoopPromise<Void>)
    case closed

    var isOpen: Bool {
        if case .open = self { return true }
        return false
    }

    var isClosed: Bool {
        if case .closed = self { return true }
        return false
    }

    /// Starts closing unless that already happened; returns what completes when closed and
    /// whether this call started it (the caller then closes at once if it is idle).
    mutating func beginClosing(on eventLoop: any EventLoop) -> (closed: EventLoopFuture<Void>, started: Bool) {
        switch self {
        case .open:
            let promise = eventLoop.makePromise(of: Void.self)
            self = .closing(promise)
            return (promise.futureResult, true)
        case .closing(let promise):
            return (promise.futureResult, false)
        case .closed:
            return (eventLoop.makeSucceededVoidFuture(), false)
        }
    }

    /// Marks the connection closed; returns the promise of a close in progress, to complete.
    mutating func markClosed() -> EventLoopPromise<Void>? {
        defer { self = .closed }
        if case .closing(let promise) = self { return promise }
        return nil
    }
}
