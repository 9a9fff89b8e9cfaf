import Synchronization

/// How many requests each lane keeps in flight at most: `-R`, or fewer while auto-tuning
/// takes its first look. Shared by every lane, which reads it each time it pulls work.
///
/// Why fewer at first: on a server that answers one request at a time, every request
/// queued at the starting size is served before the larger size the first look picks can
/// show. 64 queued 256K requests a lane are 0.3 s of work on a serialized server at 5 ms
/// a request, and 0.5 s on a Python plugin at 2 ms that serializes all four lanes; 32
/// halve that and cost a light server nothing measurable (null on 2 cores copied 3.2 to
/// 3.6 GB/s at 256K with 32 or 64 in flight).
final class RequestLimit: Sendable {
    /// `-R`.
    let maximum: Int
    private let requests: Atomic<Int>

    init(maximum: Int, starting: Int) {
        self.maximum = maximum
        requests = Atomic(min(starting, maximum))
    }

    /// Requests a lane may have in flight now.
    var current: Int { requests.load(ordering: .relaxed) }

    /// Back to `maximum`, for good; lanes fill up as their requests complete.
    func lift() {
        requests.store(maximum, ordering: .relaxed)
    }
}
