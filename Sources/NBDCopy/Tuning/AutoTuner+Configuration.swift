/// What the tuner is given once (`Configuration`) and at every tick (`Measurement`).
extension AutoTuner {
    struct Configuration: Sendable {
        var maximumLanes: Int
        var tunesLanes: Bool
        var initialLanes: Int
        /// The sizes to choose from; the first is where it starts. One size: not tuned.
        var requestSizes: [UInt64]
        /// Sizes above this are tried only once the first look found a fixed cost per
        /// request: on light servers they never paid for their probes.
        var ordinaryLargestSize: UInt64 = .max
        /// Once it found one, the fit and the climb go up to this.
        var largestFittedSize: UInt64 = .max
        /// A lane service time at least this long at the starting size: requests have a
        /// cost of their own, and the first look steps up at once. Light servers here
        /// (null, a page-cached file, qemu-nbd) serve a 256K request in 0.2 to 0.45 ms of a
        /// lane's time; a parallel server with a 5 ms delay in 0.7 to 0.8 ms, where 4M
        /// requests copy nearly twice as fast (a 1 ms threshold left it to the climb, which
        /// a 1 GiB copy outruns).
        var slowServiceTime: Duration = .microseconds(600)
        /// A lane service time at least this long at the starting size, on two ticks in a
        /// row from the second on (or `decisiveTickServiceTime` on one), is taken at once,
        /// without waiting for the first look's window, and the step goes straight to the
        /// largest size a fit may choose: only a server with a cost of its own per request
        /// serves 256K that slowly (a serialized server at 5 ms here takes 6 ms, a Python plugin at
        /// 2 ms 2.4 ms; null's first, slowest tick 0.5 ms). A large request that does not
        /// pay is taken back as any first look's step is.
        var decisiveServiceTime: Duration = .microseconds(1500)
        /// A service time this long on a single tick is decisive on its own. An early tick
        /// of qemu-nbd read 1.2 to 1.6 ms in about one copy in six on a slow afternoon, and
        /// its 16M step, taken back, cost a 2 GiB copy 0.8 s (in 30 copies on another day
        /// its second and third ticks read 0.6 to 1.45 ms, never both over 1.25); a Python
        /// plugin at 2 ms reads 2.3 to 2.4 ms, and waiting for a second tick cost its 1 GiB
        /// 0.13 s (1.11 s against 0.98, medians of 7).
        var decisiveTickServiceTime: Duration = .milliseconds(2)
        /// No size step goes larger than what a lane moves in this long at the rate
        /// measured last (the decisive look's tick, otherwise the last window): a server
        /// slow per byte (a bandwidth cap), not per request, takes that long for each
        /// request, and a stop waits for the requests in flight. A serialized server at
        /// 5 ms moves 47 MB/s a lane at 256K, a Python plugin at 2 ms 110 MB/s: both reach
        /// 16M; a server capped at 4 MB/s on 2 lanes gets 1M. (nbdkit's rate filter at
        /// 4 MB/s answered no 16M request in 40 s: a fit from a first tick that read half
        /// the cap had jumped there.)
        var longestRequestTime: Duration = .milliseconds(500)
        /// The cores this copy shares with its servers, when every endpoint runs on this
        /// machine; nil when one is across the network. A light server here is limited by
        /// these cores, not by its requests: lanes past one a core only add threads that
        /// take turns. So the first look cuts lanes to one a core, a probe kept within
        /// `fewerTolerance`; and so where requests have a cost of their own short of a
        /// decisive one (`costlyServerRungs`). On 2 cores over 25 s, null copied 5.0–6.0 GB/s
        /// on 2 lanes of 1M, where the climb one lane at a time stopped at 3, 4 or 5 lanes
        /// (4.0–5.1 GB/s).
        var sharedCores: Int?
        /// Rungs the size goes up with the cut to one lane a core on a light server, judged
        /// together. On 2 cores, 8 s each: null copied 5.0–6.0 GB/s on 2 lanes of 1M against
        /// 4.0–4.4 on 4 of 256K. But qemu-nbd copies 2 GiB in 1.37–1.84 s with 2 lanes of 1M
        /// against 0.83–0.90 on 4 of 256K, and a short copy would end before the take-back;
        /// with 2 of 512K in 0.79–0.92 s (a page-cached file: 0.51–0.55 s against
        /// 0.69–1.14). One rung then, and the climb takes the next.
        var lightServerRungs = 1
        /// Rungs the size goes up with the cut to one lane a core where requests have a cost
        /// of their own (`slowServiceTime`) but not a decisive one: a parallel server with a
        /// 5 ms delay, whose threads share the cores with the copy. Half the lanes at four
        /// times the size keep as many bytes in flight on fewer threads. On 2 cores,
        /// interleaved, 1 GiB into `null:`: medians of 0.53–0.73 s on 2 lanes of 1M against
        /// 0.83–0.85 on 4 of 256K, and 0.83 on 4 of 2M (the step this band took before);
        /// 4 GiB: 2.45 s against 2.51 on 4 of 1M and 2.94 on 8 of 4M.
        var costlyServerRungs = 2
        /// Ticks the first look, and the step it takes, are measured over.
        var firstLookSamples = 2
        /// Ticks this long after the first look's step are not measured: both sides fault
        /// in buffers of the new size, and a server's allocator adapts to it (a parallel
        /// server with a 5 ms delay reached its 2M rate, 15% over 256K's, only after
        /// 0.3 s, and a window read from 0.2 s saw -6% to +3%).
        var firstLookStepSettle: Duration = .milliseconds(400)
        /// Rungs the first look's step goes up.
        var firstLookRungs = 3
        /// The share of a request's service time the size fitted from the first look
        /// spends on bytes rather than on the fixed cost: 0.9 leaves the fixed cost 10%,
        /// the margin by which a setting counts as near the best. The fit's bandwidth comes
        /// from the first, warming requests and is low if anything, so it errs small.
        var efficiency = 0.9
        /// The smallest rise in rate that keeps a step.
        var gain = 0.05
        /// The largest fall in rate that still keeps one lane fewer: as fast with fewer
        /// connections is better (less memory, less of the machine), and a small machine's
        /// windows differ by a few percent at the same setting. On a light server on
        /// 2 cores, 3 lanes copied within 1% of 4; waiting for fewer lanes to pay 5% kept
        /// all 4 at 512K, where 2 lanes of 1M copied about 10% faster.
        var fewerTolerance = 0.03
        /// A rise or fall, while holding, that means conditions changed.
        var markedChange = 0.2
        /// A probe whose gain exceeds `gain` by this much (and four standard errors) is kept
        /// before its window is stable: a doubling needs no long look.
        var clearMargin = 0.1
        /// A request-size step that raised the rate this much makes the next one skip a rung.
        var leap = 0.5
        /// The smallest rise that keeps several lanes added at once: twice the connections
        /// and their memory are not worth less, and a window's noise here is 5 to 10%
        /// (16 lanes of 16M kept for +13% on a serialized server copied 10-15% slower than
        /// 8 in longer runs).
        var laneLeap = 0.15
        /// Ticks this long after a change are not measured (pipelines refill), or longer:
        /// until the work in flight at the change has turned over, up to `longestSettle`.
        var settle: Duration = .milliseconds(200)
        var longestSettle: Duration = .seconds(2)
        /// While holding, at most one probe this often.
        var probeInterval: Duration = .seconds(30)
        /// A probed lane that has not opened after this long is given up.
        var laneOpenTimeout: Duration = .seconds(5)
        var window = RateWindow.Limits()
        /// The window of one lane fewer, and of the count it starts from: twice as long.
        /// A loss of 3% decides it, and 0.5 s windows of the same setting on a light server
        /// here differ by 10%.
        var fewerWindow = RateWindow.Limits(minimumSamples: 10, maximumSamples: 20)
    }

    /// One tick's figures.
    struct Measurement: Sendable {
        /// Time since the copy started.
        var now: Duration
        /// How long the tick lasted.
        var tick: Duration
        /// Bytes completed per second over the tick.
        var bytesPerSecond: Double
        /// Lanes open now (not draining).
        var lanes: Int
        /// Bytes of copy work handed out and not completed: with a deep queue at a server
        /// that answers in order, a change shows only once this has turned over.
        var bytesInFlight: UInt64 = 0
        var paused = false
    }
}
