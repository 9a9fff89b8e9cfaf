import NBD
@testable import NBDCopy
import Testing

/// The pure parts of reconnecting: the backoff between tries, which completed work a
/// broken destination connection forces to be copied again, and when checkpoints are due.
struct ReconnectPolicyTests {
    static func item(_ offset: UInt64) -> CompletedWork {
        CompletedWork(item: WorkItem(offset: offset, length: 4096, kind: .copy), bytes: 4096, zeroed: 0, skipped: 0)
    }

    @Test func backoffDoublesFrom100msTo5sAndStopsAtTheLimit() {
        let start = ContinuousClock.now
        var backoff = ReconnectBackoff(limit: .seconds(30), brokeAt: start)
        var now = start
        var delays: [Duration] = []
        while let delay = backoff.nextDelay(now: now) {
            delays.append(delay)
            now += delay
        }
        #expect(Array(delays.prefix(7)) == [.milliseconds(100), .milliseconds(200), .milliseconds(400), .milliseconds(800),
                                            .milliseconds(1600), .milliseconds(3200), .seconds(5)])
        #expect(delays.dropFirst(6).dropLast().allSatisfy { $0 == .seconds(5) })
        // The last wait is cut short so that the last try starts as the limit runs out:
        // the whole duration is tried, and giving up comes only after it.
        #expect(now - start == .seconds(30))
        #expect(delays.last! < .seconds(5))
        #expect(backoff.attempts == delays.count)
        #expect(backoff.nextDelay(now: now + .milliseconds(20)) == nil, "a try that failed after the limit is the last")
        #expect(backoff.elapsed(now: now + .milliseconds(20)) == .milliseconds(30_020))
    }

    @Test func everyLimitIsTriedToItsEndWithinHalfASecond() {
        for milliseconds in [50, 350, 999, 2_000, 4_600, 5_000, 7_777, 12_345] {
            let start = ContinuousClock.now
            let limit = Duration.milliseconds(milliseconds)
            var backoff = ReconnectBackoff(limit: limit, brokeAt: start)
            var now = start
            // Each try takes 30 ms to fail (a refused connection, a slow handshake).
            while let delay = backoff.nextDelay(now: now) { now += delay + .milliseconds(30) }
            #expect(now - start >= limit, "\(milliseconds) ms")
            #expect(now - start <= limit + .milliseconds(500), "\(milliseconds) ms: gave up at \(now - start)")
            #expect(backoff.attempts >= 1)
        }
    }

    @Test func onlyWorkNotCoveredByAnAcknowledgedCheckpointIsCopiedAgain() {
        var unflushed = UnflushedWrites()
        unflushed.record(Self.item(0), generation: 0)
        unflushed.record(Self.item(4096), generation: 0)
        unflushed.record(Self.item(8192), generation: 1)  // completed after checkpoint 1 was sent
        unflushed.checkpointReached(1)
        #expect(unflushed.takeAll() == [Self.item(8192)])
        #expect(unflushed.isEmpty)
    }

    @Test func generationsAdvanceBeforeEachCheckpoint() {
        let generations = CheckpointGeneration()
        #expect(generations.current == 0)
        #expect(generations.advance() == 1)
        #expect(generations.current == 1)
    }

    @Test func checkpointsAreDueByBytesOrByTimeOneAtATime() {
        let start = ContinuousClock.now
        var schedule = CheckpointSchedule()
        schedule.reset(bytesDone: 0, now: start)
        #expect(!schedule.isDue(bytesDone: 100, now: start + .seconds(1), every: 1000, or: .seconds(30)))
        #expect(schedule.isDue(bytesDone: 1000, now: start + .seconds(1), every: 1000, or: .seconds(30)))
        #expect(schedule.isDue(bytesDone: 1, now: start + .seconds(31), every: 1000, or: .seconds(30)))
        #expect(!schedule.isDue(bytesDone: 0, now: start + .seconds(31), every: 1000, or: .seconds(30)))  // nothing new
        schedule.begin()
        #expect(!schedule.isDue(bytesDone: 5000, now: start + .seconds(40), every: 1000, or: .seconds(30)))
        schedule.end(succeeded: false, bytesDone: 5000, now: start + .seconds(40))
        #expect(schedule.isDue(bytesDone: 5000, now: start + .seconds(40), every: 1000, or: .seconds(30)))
        schedule.begin()
        schedule.end(succeeded: true, bytesDone: 5000, now: start + .seconds(40))
        // Progress that went back (work copied again) does not count as new bytes.
        #expect(!schedule.isDue(bytesDone: 4000, now: start + .seconds(41), every: 1000, or: .seconds(30)))
    }
}

/// Which errors `--retries` tries again: transient ones only, and only when the connection
/// is still good.
struct RetryPolicyTests {
    @Test(arguments: [NBDErrno.eio, .eagain, .eintr, .eshutdown, .enomem, .etimedout])
    func transientErrnosMayPassOnRetry(_ errno: NBDErrno) {
        #expect(EndpointError(.request, "read at 0: \(errno)", errno: errno).mayPassOnRetry)
    }

    @Test(arguments: [NBDErrno.enospc, .erofs, .eperm, .eacces, .einval, .efbig, .eoverflow, .enotsup])
    func errnosThatWillFailAgainFailAtOnce(_ errno: NBDErrno) {
        #expect(!EndpointError(.request, "write at 0: \(errno)", errno: errno).mayPassOnRetry)
    }

    @Test func errorsWithoutANumberOrAConnectionAreNotRetriedAsRequests() {
        #expect(!EndpointError(.request, "short read").mayPassOnRetry)
        #expect(!EndpointError(.connection, "reset", errno: .eio).mayPassOnRetry)
        #expect(!EndpointError(.fatal, "the export changed", errno: .eio).mayPassOnRetry)
    }
}
