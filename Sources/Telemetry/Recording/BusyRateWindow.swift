/// The rate at which a connection moves bytes while it is busy, over the recent past, in
/// two rotating 5-second windows (as `LatencyWindow`, so it covers 5 to 10 seconds).
///
/// Busy time is the sum of the gaps between completions while requests were in flight, so
/// idle spells do not lower the rate. The stall detector asks how long the connection's own
/// pace needs to move a request's bytes: under a bandwidth cap a large request takes longer
/// than the small ones around it, and waiting for it is not a stall.
struct BusyRateWindow {
    private struct Totals {
        var bytes: UInt64 = 0
        var busyNanoseconds: UInt64 = 0
    }

    private var current = Totals()
    private var previous = Totals()
    private var currentWindowNumber: UInt64 = 0

    /// Records a completion of `bytes` after `busyNanoseconds` of waiting, at `elapsedNanoseconds`.
    mutating func record(bytes: UInt64, busyNanoseconds: UInt64, elapsedNanoseconds: UInt64) {
        advance(elapsedNanoseconds: elapsedNanoseconds)
        current.bytes &+= bytes
        current.busyNanoseconds &+= busyNanoseconds
    }

    /// Ends the windows that are over at `elapsedNanoseconds`.
    mutating func advance(elapsedNanoseconds: UInt64) {
        let windowNumber = elapsedNanoseconds / LatencyWindow.windowNanoseconds
        guard windowNumber > currentWindowNumber else { return }
        previous = windowNumber == currentWindowNumber + 1 ? current : Totals()
        current = Totals()
        currentWindowNumber = windowNumber
    }

    /// How long moving `bytes` takes at the recent busy rate; nil before any byte was moved.
    func nanoseconds(toMove bytes: UInt64) -> UInt64? {
        let movedBytes = current.bytes &+ previous.bytes
        let busy = current.busyNanoseconds &+ previous.busyNanoseconds
        guard movedBytes > 0 else { return nil }
        // bytes × busy / movedBytes, in floating point: the product overflows 64 bits for
        // a large request after a long busy spell, and a nanosecond's precision is plenty.
        let estimate = Double(bytes) * Double(busy) / Double(movedBytes)
        return estimate >= Double(UInt64.max) ? .max : UInt64(estimate)
    }
}
