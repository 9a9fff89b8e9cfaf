/// Checks `condition` every `interval` until it holds or `timeout` has passed, sleeping
/// in between (never blocking a thread). For what gives no notice of its own: a child's
/// exit (reaped with `waitpid(WNOHANG)`), a pipe's end.
func pollUntil(every interval: Duration, timeout: Duration, _ condition: () -> Bool) async {
    let deadline = ContinuousClock.now + timeout
    while !condition() && ContinuousClock.now < deadline {
        try? await Task.sleep(for: interval)
    }
}
