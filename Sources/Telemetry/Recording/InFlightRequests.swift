import DequeModule

/// The requests sent on a connection and not answered yet, with the age of the oldest.
///
/// Requests are answered out of order. A dictionary finds a request by token; a deque
/// keeps tokens in the order they were sent, and answered tokens are dropped from its
/// front lazily, so the oldest unanswered request is always at the front. When one
/// request stays unanswered while many behind it are answered, the answered tokens in
/// the middle of the deque are compacted away once they outnumber the live ones, which
/// keeps memory proportional to what is in flight. Every operation is amortized O(1).
struct InFlightRequests {
    /// When a request was sent and how large it is.
    struct Request {
        var sentAtNanoseconds: UInt64
        var bytes: UInt64
        /// The connection's total stalled time when it was sent (for slow requests).
        var stalledAtSendNanoseconds: UInt64 = 0
        /// Requests in flight just before it, and answers so far, when it was sent.
        var inFlightAtSend = 0
        var answeredAtSend: UInt64 = 0
    }

    /// Dropped tokens may pile up to this many beyond twice the live ones before compaction.
    private static let compactionSlack = 64

    private var requestsByToken: [UInt64: Request] = [:]
    /// Tokens in the order sent; may still hold answered tokens, never at the front.
    private var tokensInSendOrder = Deque<UInt64>()
    /// Sum of the bytes of the requests in flight.
    private(set) var bytes: UInt64 = 0

    /// Requests in flight.
    var count: Int { requestsByToken.count }

    /// Send time of the oldest request in flight, in nanoseconds of uptime; nil when none.
    var oldestSentAtNanoseconds: UInt64? {
        guard let token = tokensInSendOrder.first else { return nil }
        return requestsByToken[token]?.sentAtNanoseconds
    }

    /// Size of the oldest request in flight; 0 when none.
    var oldestBytes: UInt64 {
        guard let token = tokensInSendOrder.first else { return 0 }
        return requestsByToken[token]?.bytes ?? 0
    }

    /// Requests answered so far.
    private(set) var answered: UInt64 = 0

    /// Adds a request; `token` must be greater than every token added before.
    mutating func insert(token: UInt64, sentAtNanoseconds: UInt64, bytes: UInt64, stalledAtSendNanoseconds: UInt64 = 0) {
        requestsByToken[token] = Request(sentAtNanoseconds: sentAtNanoseconds, bytes: bytes,
                                         stalledAtSendNanoseconds: stalledAtSendNanoseconds,
                                         inFlightAtSend: requestsByToken.count, answeredAtSend: answered)
        tokensInSendOrder.append(token)
        self.bytes &+= bytes
    }

    /// How many requests sent after `request` (of `token`, already removed) were answered
    /// before it: the answers during its life, less those of requests older than it. O(n)
    /// in the requests in flight, so only asked about requests that are candidates.
    func overtaking(_ request: Request, token: UInt64) -> Int {
        let answeredDuringLife = Int(answered &- request.answeredAtSend) - 1  // not itself
        let olderStillInFlight = requestsByToken.keys.filter { $0 < token }.count
        let olderAnswered = request.inFlightAtSend - olderStillInFlight
        return max(0, answeredDuringLife - olderAnswered)
    }

    /// Removes and returns the request of `token`; nil when it is not in flight (unknown or answered).
    mutating func remove(token: UInt64) -> Request? {
        guard let request = requestsByToken.removeValue(forKey: token) else { return nil }
        answered &+= 1
        bytes &-= request.bytes
        while let first = tokensInSendOrder.first, requestsByToken[first] == nil {
            tokensInSendOrder.removeFirst()
        }
        if tokensInSendOrder.count > 2 * requestsByToken.count + Self.compactionSlack {
            tokensInSendOrder.removeAll { requestsByToken[$0] == nil }
        }
        return request
    }
}
