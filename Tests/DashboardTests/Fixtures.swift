import Dashboard
@testable import Telemetry

/// Snapshots built by hand for the render tests.
enum Fixtures {
    static func connection(_ lane: Int, _ side: ConnectionSide, rate: Double = 50 * 1_048_576, stalled: Bool = false,
                           state: ConnectionState = .active) -> ConnectionSnapshot {
        var connection = ConnectionSnapshot(laneID: lane, side: side, state: state)
        connection.bytesPerSecond = rate
        connection.bytes = UInt64(rate * 10)
        connection.rateHistory = (0..<60).map { rate * Double(($0 % 10) + 1) / 10 }
        connection.inFlight = 16
        connection.inFlightBytes = 16 * 256 << 10
        connection.slowRequests = 4
        connection.latencyP50 = .microseconds(1500)
        connection.latencyP99 = .milliseconds(12)
        connection.oldestInFlight = .milliseconds(3)
        if stalled {
            connection.stalled = true
            connection.stallEpisodes = 3
            connection.stalledTime = .milliseconds(1250)
            connection.oldestInFlight = .milliseconds(900)
            connection.requestsHeldBehind = 40
        }
        return connection
    }

    static func snapshot(lanes: Int = 2, stalledLane: Int? = nil, paused: Bool = false) -> CopySnapshot {
        var connections: [ConnectionSnapshot] = []
        for lane in 1...max(1, lanes) {
            connections.append(connection(lane, .source, stalled: lane == stalledLane))
            connections.append(connection(lane, .destination))
        }
        return CopySnapshot(
            elapsed: .seconds(75), bytesTotal: 4 << 30, bytesDone: 1 << 30, bytesZeroed: 256 << 20, bytesSkipped: 0,
            bytesPerSecond: 100 * 1_048_576, averageBytesPerSecond: 90 * 1_048_576, eta: .seconds(30), lanes: lanes,
            maximumLanes: 16, laneLimitReason: "source: server advertises multi-conn", paused: paused,
            connections: connections)
    }

    static func state() -> DashboardState {
        DashboardState(sourceName: "nbd+unix:///?socket=/tmp/src.sock", destinationName: "null:", requestsPerLane: 64)
    }
}
