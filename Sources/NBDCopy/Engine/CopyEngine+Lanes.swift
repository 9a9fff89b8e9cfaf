import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Telemetry

/// Lanes added and dropped while the copy runs (the dashboard's keys, the control
/// socket, the tuner), pausing and stopping.
extension CopyEngine {
    // MARK: Lanes

    /// Opens a lane and starts it, for a user: lanes are manual from then on (auto-tuning
    /// of lanes stops until `resumeAutoLanes`). Returns its id or throws `CopyError`.
    @discardableResult
    public func addLane() async throws -> Int {
        switch lock.withLock({ lifecycle.reserveLane() }) {
        case .open(let id):
            lanesSetByUser()
            return try await openLane(id)
        case .refused(let reason):
            eventContinuation.yield(.laneRefused(reason: reason))
            throw CopyError.failed("cannot add a lane: \(reason)")
        }
    }

    func openLane(_ id: Int) async throws -> Int {
        let eventLoop = lock.withLock { () -> any EventLoop in
            let loop = (id == 1 ? firstEventLoop : nil) ?? leastBusyEventLoop()
            openingLoops[id] = loop
            return loop
        }
        defer { lock.withLock { _ = openingLoops.removeValue(forKey: id) } }
        do {
            let sourceConnection = try await source.connect(on: eventLoop)
            let destinationConnection: NIOLoopBound<any EndpointConnection>
            do {
                destinationConnection = try await destination.connect(on: sourceConnection.eventLoop)
            } catch {
                sourceConnection.eventLoop.execute { sourceConnection.value.abort() }
                throw error
            }
            let endpoints = LaneEndpoints(source: source, destination: destination)
            let lane = try await sourceConnection.eventLoop.submit { [planner, settings] in
                NIOLoopBound(Lane(id: id, source: sourceConnection.value, destination: destinationConnection.value,
                                  endpoints: endpoints, planner: planner, settings: settings, delegate: self),
                             eventLoop: sourceConnection.eventLoop)
            }.get()
            perform(lock.withLock {
                lanes[id] = lane
                return lifecycle.laneOpened(id)
            })
            return id
        } catch {
            let reason = "\(error)"
            eventContinuation.yield(.laneFailed(laneID: id, reason: reason))
            perform(lock.withLock { lifecycle.laneOpenFailed(id, reason: reason) })
            throw CopyError.failed(reason)
        }
    }

    /// The first lane, then the others at once: it reuses the connection that opened the
    /// endpoints, and each of the others is a handshake of a few round trips that, one
    /// after another, cost a short copy about 3 ms each (1 MiB from nbdkit: 28 ms on one
    /// lane, 37 on four).
    func openInitialLanes(_ count: Int) async {
        guard count > 0, case .open(let first) = lock.withLock({ lifecycle.reserveLane() }) else { return }
        _ = try? await openLane(first)
        var others: [Int] = []
        for _ in 1..<count {
            guard case .open(let id) = lock.withLock({ lifecycle.reserveLane() }) else { break }
            others.append(id)
        }
        await withTaskGroup(of: Void.self) { group in
            for id in others { group.addTask { _ = try? await self.openLane(id) } }
        }
    }

    /// The event loop with the fewest lanes, open or opening, so lanes spread over every
    /// core. (`group.next()` is round-robin over every caller, so it can put two lanes on
    /// one loop.) Called with `lock` held.
    private func leastBusyEventLoop() -> any EventLoop {
        let loops = Array(group.makeIterator())
        guard !loops.isEmpty else { return group.next() }
        let busy = lanes.values.map(\.eventLoop) + openingLoops.values
        return loops.min { candidate, other in
            busy.filter { $0 === candidate }.count < busy.filter { $0 === other }.count
        }!
    }

    /// Drains a lane (the newest when `id` is nil), for a user: lanes are manual from then
    /// on, as with `addLane`. The last lane is never dropped.
    @discardableResult
    public func dropLane(id: Int? = nil) -> Int? {
        let dropped = drainLane(id: id)
        if dropped != nil { lanesSetByUser() }
        return dropped
    }

    func drainLane(id: Int?) -> Int? {
        let chosen = lock.withLock { () -> (Int, NIOLoopBound<Lane>)? in
            guard let target = lifecycle.dropLane(id), let lane = lanes[target] else { return nil }
            return (target, lane)
        }
        guard let (laneID, lane) = chosen else { return nil }
        lane.eventLoop.execute { lane.value.drain() }
        return laneID
    }

    /// Pauses or resumes issuing requests; requests in flight finish either way.
    public func setPaused(_ paused: Bool) {
        let all = lock.withLock { () -> [NIOLoopBound<Lane>] in
            self.paused = paused
            return Array(lanes.values)
        }
        for lane in all { lane.eventLoop.execute { lane.value.setPaused(paused) } }
        eventContinuation.yield(.paused(paused))
    }

    /// Stops cleanly (Ctrl-C): no new requests, drain, disconnect; `run` throws `.interrupted`.
    /// A person pressing Ctrl-C can wait for deep queues to drain (and press it again).
    public func stop() {
        perform(lock.withLock { lifecycle.stop(.interrupted, drainTimeout: .seconds(60)) })
    }
}
