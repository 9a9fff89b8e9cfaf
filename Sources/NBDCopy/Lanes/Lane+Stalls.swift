import NBD
import NIOCore
import Telemetry

/// Each answer recorded in its connection's figures, and the stall checks: where the
/// lane feeds `ConnectionStats` and reports stalls and slow requests as events.
extension Lane {
    // MARK: Stalls and slow requests

    /// Records the answer to a request in its connection's figures; a slow request is an event.
    func answered<Success>(_ token: ConnectionStats.RequestToken, on side: ConnectionSide, _ result: Result<Success, EndpointError>,
                                   _ operation: RequestOperation, offset: UInt64, length: UInt64) {
        let succeeded: Bool, errno: NBDErrno?
        switch result {
        case .success: (succeeded, errno) = (true, nil)
        case .failure(let error): (succeeded, errno) = (false, error.errno)
        }
        guard let latency = stats(side).requestCompleted(token, succeeded: succeeded, now: .now(),
                                                         operation: operation, errno: errno) else { return }
        delegate.laneReported(.slowRequest(laneID: id, side: side, operation: operation, offset: offset, length: length,
                                           latency: latency))
    }

    func checkStalls() {
        let now = NIODeadline.now()
        for stats in [sourceStats, destinationStats] {
            if let stall = stats.evaluateStall(now: now) {
                delegate.laneReported(.stall(laneID: id, side: stats.side, oldestAge: stall.oldestAge, held: stall.held))
            }
        }
    }
}
