@testable import NBDCopy
import Testing
import Telemetry

/// The copy's lifecycle driven input by input, without servers: each test checks the
/// actions an input returns and the result the copy ends with.
struct CopyLifecycleTests {
    typealias Action = CopyLifecycle.Action

    static func machine(flush: Bool = true, canFlush: Bool = true, maximumLanes: Int = 4) -> CopyLifecycle {
        CopyLifecycle(CopyLifecycle.Configuration(flushWanted: flush, destinationCanFlush: canFlush,
                                                  maximumLanes: maximumLanes, laneLimitReason: "source: test"))
    }

    /// A running machine with lanes 1...count open.
    static func running(lanes count: Int, flush: Bool = true, canFlush: Bool = true) -> CopyLifecycle {
        var machine = machine(flush: flush, canFlush: canFlush)
        let started = machine.start()
        #expect(started)
        for expected in 1...count {
            do { let result = machine.reserveLane(); #expect(result == .open(id: expected)) }
            do { let result = machine.laneOpened(expected); #expect(result == [.startLane(expected)]) }
        }
        return machine
    }

    /// Closes every lane the last action list drained, then the endpoints; the outcome.
    static func finish(_ machine: inout CopyLifecycle, after actions: [Action]) -> CopyOutcome? {
        var pending = actions
        var outcome: CopyOutcome?
        while !pending.isEmpty {
            let action = pending.removeFirst()
            switch action {
            case .drain(let ids), .cancel(let ids), .abort(let ids):
                for id in ids { pending += machine.laneClosed(id) }
            case .closeEndpoints:
                pending += machine.endpointsClosed()
            case .complete(let result):
                outcome = result
            case .startLane, .discardLane, .flush, .scheduleDrainTimeout:
                break
            }
        }
        return outcome
    }

    @Test func allLanesIdleFlushOnAnOpenLaneThenClose() {
        var machine = Self.running(lanes: 3)
        do { let result = machine.laneIdle(2); #expect(result == []) }
        do { let result = machine.laneIdle(3); #expect(result == []) }
        do { let result = machine.dropLane(1); #expect(result == 1) }  // an idle lane that drains does not take the flush
        do { let result = machine.laneIdle(1); #expect(result == [.flush(laneID: 2)]) }
        #expect(machine.phase == .flushing)
        let actions = machine.flushSucceeded()
        #expect(actions == [.drain([1, 2, 3])])  // lane 1 is asked again; draining twice is harmless
        #expect(Self.finish(&machine, after: actions) == CopyOutcome(error: nil, flush: .acknowledged))
        #expect(machine.phase == .done)
    }

    @Test func theFlushWaitsForLanesStillOpening() {
        var machine = Self.machine()
        let started = machine.start()
        #expect(started)
        do { let result = machine.reserveLane(); #expect(result == .open(id: 1)) }
        do { let result = machine.laneOpened(1); #expect(result == [.startLane(1)]) }
        do { let result = machine.reserveLane(); #expect(result == .open(id: 2)) }
        do { let result = machine.laneIdle(1); #expect(result == []) }  // lane 2 is still connecting
        do { let result = machine.laneOpened(2); #expect(result == [.startLane(2)]) }
        do { let result = machine.laneIdle(2); #expect(result == [.flush(laneID: 1)]) }
    }

    @Test func aDestinationThatCannotFlushIsReportedAsSuch() {
        var machine = Self.running(lanes: 1, canFlush: false)
        let actions = machine.laneIdle(1)
        #expect(actions == [.drain([1])])
        #expect(Self.finish(&machine, after: actions) == CopyOutcome(error: nil, flush: .unsupported))
    }

    @Test func noFlushWhenNotWanted() {
        var machine = Self.running(lanes: 1, flush: false)
        let actions = machine.laneIdle(1)
        #expect(Self.finish(&machine, after: actions) == CopyOutcome(error: nil, flush: .notRequested))
    }

    @Test func aStopBeforeTheStartEndsWithTheStop() {
        var machine = Self.machine()
        let actions = machine.stop(.interrupted, drainTimeout: .seconds(60))
        #expect(actions == [.closeEndpoints])
        let started = machine.start()
        #expect(!started)
        do { let result = machine.reserveLane(); #expect(result == .refused("the copy is finishing")) }
        #expect(Self.finish(&machine, after: actions) == CopyOutcome(error: .interrupted, flush: .notReached))
    }

    @Test func aStopWhileRunningDrainsWithItsTimeout() {
        var machine = Self.running(lanes: 2)
        let actions = machine.stop(.interrupted, drainTimeout: .seconds(60))
        #expect(actions == [.cancel([1, 2]), .scheduleDrainTimeout(.seconds(60))])
        do { let result = machine.stop(.failed("later"), drainTimeout: .seconds(5)); #expect(result == []) }  // the first reason wins
        #expect(Self.finish(&machine, after: actions) == CopyOutcome(error: .interrupted, flush: .notReached))
    }

    @Test func aStopDuringTheFlushWinsWhateverTheFlushAnswers() {
        for flushSucceeds in [true, false] {
            var machine = Self.running(lanes: 2)
            _ = machine.laneIdle(1)
            do { let result = machine.laneIdle(2); #expect(result == [.flush(laneID: 1)]) }
            do { let result = machine.stop(.interrupted, drainTimeout: .seconds(60)); #expect(result == [.scheduleDrainTimeout(.seconds(60))]) }
            let actions = flushSucceeds ? machine.flushSucceeded() : machine.flushFailed("EIO")
            #expect(actions.first == .cancel([1, 2]))
            let outcome = Self.finish(&machine, after: actions)
            #expect(outcome?.error == .interrupted)
            #expect(outcome?.flush == (flushSucceeds ? .acknowledged : .failed))
        }
    }

    @Test func aStopAfterTheFlushWasAcknowledgedChangesNothing() {
        var machine = Self.running(lanes: 1)
        _ = machine.laneIdle(1)
        let actions = machine.flushSucceeded()
        do { let result = machine.stop(.interrupted, drainTimeout: .seconds(60)); #expect(result == []) }
        #expect(Self.finish(&machine, after: actions) == CopyOutcome(error: nil, flush: .acknowledged))
    }

    @Test func aFailedFlushFailsTheCopy() {
        var machine = Self.running(lanes: 1)
        _ = machine.laneIdle(1)
        let actions = machine.flushFailed("ENOSPC")
        #expect(Self.finish(&machine, after: actions) == CopyOutcome(error: .failed("flush failed: ENOSPC"), flush: .failed))
    }

    @Test func workThatCameBackDuringTheFlushIsFlushedAgain() {
        var machine = Self.running(lanes: 2)
        _ = machine.laneIdle(1)
        do { let result = machine.laneIdle(2); #expect(result == [.flush(laneID: 1)]) }
        machine.laneBusy(2)  // lane 2's destination broke: its unflushed work is copied again
        do { let result = machine.flushSucceeded(); #expect(result == []) }
        #expect(machine.phase == .running)
        do { let result = machine.laneIdle(2); #expect(result == [.flush(laneID: 1)]) }
        do { let result = Self.finish(&machine, after: machine.flushSucceeded()); #expect(result == CopyOutcome(error: nil, flush: .acknowledged)) }
    }

    /// `--reconnect`: the flush lane's connection broke under the FLUSH. The lane is busy
    /// again (it reconnects, its unflushed work is copied again); the flush waits for it and
    /// goes out again, and the copy succeeds. A stop that came first still wins.
    @Test func aFlushWhoseConnectionBrokeIsSentAgainAfterTheReconnect() {
        var machine = Self.running(lanes: 2)
        _ = machine.laneIdle(2)
        do { let result = machine.laneIdle(1); #expect(result == [.flush(laneID: 1)]) }
        machine.laneBusy(1)
        do { let result = machine.flushConnectionLost("connection reset"); #expect(result == []) }
        #expect(machine.phase == .running)
        do { let result = machine.laneIdle(1); #expect(result == [.flush(laneID: 1)]) }
        do { let result = Self.finish(&machine, after: machine.flushSucceeded()); #expect(result == CopyOutcome(error: nil, flush: .acknowledged)) }

        var stopped = Self.running(lanes: 1)
        _ = stopped.laneIdle(1)
        _ = stopped.stop(.interrupted, drainTimeout: .seconds(60))
        let outcome = Self.finish(&stopped, after: stopped.flushConnectionLost("connection reset"))
        #expect(outcome == CopyOutcome(error: .interrupted, flush: .failed))
    }

    @Test func theLastLaneFailingEndsTheCopy() {
        var machine = Self.running(lanes: 2)
        do { let result = machine.laneFailed(1, reason: "reset"); #expect(result == []) }
        let actions = machine.laneFailed(2, reason: "server gone")
        #expect(actions == [.closeEndpoints])
        #expect(Self.finish(&machine, after: actions)?.error == .noLanesLeft("server gone"))
    }

    @Test func theFirstLaneFailingToOpenFailsTheCopy() {
        var machine = Self.machine()
        let started = machine.start()
        #expect(started)
        do { let result = machine.reserveLane(); #expect(result == .open(id: 1)) }
        let actions = machine.laneOpenFailed(1, reason: "connection refused")
        #expect(Self.finish(&machine, after: actions)?.error == .failed("connection refused"))
    }

    @Test func aLaneOpenedAfterTheStopIsDiscarded() {
        var machine = Self.running(lanes: 1)
        do { let result = machine.reserveLane(); #expect(result == .open(id: 2)) }
        let stopping = machine.stop(.interrupted, drainTimeout: .seconds(60))
        #expect(stopping == [.cancel([1]), .scheduleDrainTimeout(.seconds(60))])
        do { let result = machine.laneClosed(1); #expect(result == []) }  // lane 2 is still connecting
        do { let result = machine.laneOpened(2); #expect(result == [.discardLane(2), .closeEndpoints]) }
    }

    @Test func aDrainTimeoutCutsTheLanesThatAreLeft() {
        var machine = Self.running(lanes: 3)
        _ = machine.stop(.failed("ENOSPC"), drainTimeout: .seconds(5))
        _ = machine.laneClosed(2)
        do { let result = machine.drainTimedOut(); #expect(result == [.abort([1, 3])]) }
        #expect(Self.finish(&machine, after: [.abort([1, 3])])?.error == .failed("ENOSPC"))
    }

    @Test func theLastOpenLaneCannotBeDroppedAndLanesAreLimited() {
        var machine = Self.running(lanes: 2)
        do { let result = machine.dropLane(nil); #expect(result == 2) }
        do { let result = machine.dropLane(nil); #expect(result == nil) }
        do { let result = machine.dropLane(1); #expect(result == nil) }
        do { let result = machine.reserveLane(); #expect(result == .open(id: 3)) }
        do { let result = machine.reserveLane(); #expect(result == .open(id: 4)) }
        do { let result = machine.reserveLane(); #expect(result == .open(id: 5)) }
        do { let result = machine.reserveLane(); #expect(result == .refused("already at 4 lanes (source: test)")) }
    }

    @Test func aDroppedLaneStillDrainingHoldsBackTheFlush() {
        var machine = Self.running(lanes: 2)
        do { let result = machine.dropLane(2); #expect(result == 2) }
        do { let result = machine.laneIdle(1); #expect(result == []) }  // lane 2 may still have writes in flight
        do { let result = machine.laneClosed(2); #expect(result == [.flush(laneID: 1)]) }
    }
}
