import NBD
import Telemetry
import NIOCore

/// The live figures of one client connection, updated by its relay on its event loop.
///
/// Confined to that loop (no locks on the hot path); `snapshot` copies them out. The
/// in-flight, latency, stall and slow-request figures are `ConnectionStats`', with the
/// definitions of docs/telemetry.md, so a proxied connection means what a copy's does.
final class ClientFigures {
    let id: Int
    let client: ClientIdentity
    var state = ClientSnapshot.State.handshake
    var reason: String?
    var exportSize: UInt64?

    private let stats: ConnectionStats
    private let openedAt: NIODeadline
    private var tokensByCookie: [UInt64: (token: ConnectionStats.RequestToken, sentAt: NIODeadline)] = [:]
    private var latencyByKind: [RequestKind: LatencyWindow] = [:]
    private var totalsByKind: [RequestKind: KindTotals] = [:]
    private var errorsByErrno: [String: Int] = [:]
    private var readRate = TrailingRate()
    private var writeRate = TrailingRate()

    init(id: Int, client: ClientIdentity, stallThreshold: Duration?, slowThreshold: Duration?, now: NIODeadline) {
        self.id = id
        self.client = client
        self.openedAt = now
        stats = ConnectionStats(laneID: id, side: .source, stallThreshold: stallThreshold, slowThreshold: slowThreshold, now: now)
    }

    /// The data a request moves: READ and WRITE lengths; other kinds move none.
    private static func dataBytes(_ request: RelayedRequest) -> UInt64 {
        request.type == .read || request.type == .write ? UInt64(request.length) : 0
    }

    func requestSent(_ request: RelayedRequest, now: NIODeadline) {
        tokensByCookie[request.cookie] = (stats.requestSent(bytes: Self.dataBytes(request), now: now), now)
    }

    /// Returns the round trip when it was a slow request.
    func replyReceived(_ request: RelayedRequest, error: NBDErrno?, now: NIODeadline) -> Duration? {
        guard let (token, sentAt) = tokensByCookie.removeValue(forKey: request.cookie) else { return nil }
        let kind = RequestKind(request.type)
        totalsByKind[kind, default: KindTotals()].requests += 1
        if let error {
            totalsByKind[kind, default: KindTotals()].errors += 1
            errorsByErrno[error.tallyName, default: 0] += 1
        } else {
            totalsByKind[kind, default: KindTotals()].bytes += UInt64(request.length)
            let elapsed = elapsedNanoseconds(now)
            let roundTrip = now.uptimeNanoseconds >= sentAt.uptimeNanoseconds ? now.uptimeNanoseconds - sentAt.uptimeNanoseconds : 0
            latencyByKind[kind, default: LatencyWindow()].record(latencyNanoseconds: roundTrip, elapsedNanoseconds: elapsed)
            if kind == .read { readRate.record(bytes: UInt64(request.length), elapsedNanoseconds: elapsed) }
            if kind == .write { writeRate.record(bytes: UInt64(request.length), elapsedNanoseconds: elapsed) }
        }
        return stats.requestCompleted(token, succeeded: error == nil, now: now)
    }

    func evaluateStall(now: NIODeadline) -> ConnectionStats.StallStarted? {
        stats.evaluateStall(now: now)
    }

    func snapshot(now: NIODeadline) -> ClientSnapshot {
        stats.state = switch state {
        case .handshake: .connecting
        case .active: .active
        case .closed: .closed
        case .failed: .failed
        }
        stats.failureReason = state == .failed ? reason : nil
        var snapshot = ClientSnapshot(id: id, client: client, state: state, connection: stats.snapshot(now: now))
        snapshot.reason = reason
        snapshot.totalsByKind = totalsByKind
        let elapsedNow = elapsedNanoseconds(now)
        for kind in latencyByKind.keys {
            latencyByKind[kind]!.advance(elapsedNanoseconds: elapsedNow)
            snapshot.totalsByKind[kind]?.latencyP50 = latencyByKind[kind]!.latency(atPercentile: 50)
            snapshot.totalsByKind[kind]?.latencyP99 = latencyByKind[kind]!.latency(atPercentile: 99)
        }
        snapshot.errorsByErrno = errorsByErrno
        let elapsed = elapsedNanoseconds(now)
        snapshot.readBytesPerSecond = readRate.bytesPerSecond(elapsedNanoseconds: elapsed)
        snapshot.writeBytesPerSecond = writeRate.bytesPerSecond(elapsedNanoseconds: elapsed)
        snapshot.exportSize = exportSize
        return snapshot
    }

    private func elapsedNanoseconds(_ now: NIODeadline) -> UInt64 {
        now.uptimeNanoseconds >= openedAt.uptimeNanoseconds ? now.uptimeNanoseconds - openedAt.uptimeNanoseconds : 0
    }
}
