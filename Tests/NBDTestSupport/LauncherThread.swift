import Foundation

/// Starts servers from one thread that lives as long as the test process.
///
/// `ServerProcess` starts nbdkit with `--exit-with-parent`, which on Linux is
/// `PR_SET_PDEATHSIG`: the signal comes when the *thread* that started the server ends,
/// not the process. Async tests run on a thread pool whose idle threads do end, so a
/// server started from one could get SIGTERM in the middle of the test (nbdkit then
/// answers the requests in flight with ESHUTDOWN). `ServerProcess` therefore spawns
/// every server from this thread.
public enum LauncherThread {
    private final class Job: @unchecked Sendable {
        let body: () -> Void
        init(_ body: @escaping () -> Void) { self.body = body }
    }

    private final class Worker: @unchecked Sendable {
        let condition = NSCondition()
        var jobs: [Job] = []
        /// The worker's pthread, set by the thread itself before it takes jobs.
        var threadID: pthread_t?
        var isCurrentThread: Bool {
            condition.lock()
            defer { condition.unlock() }
            return threadID.map { pthread_equal($0, pthread_self()) != 0 } ?? false
        }

        init() {
            let thread = Thread { [self] in
                condition.lock()
                threadID = pthread_self()
                condition.unlock()
                while true {
                    condition.lock()
                    while jobs.isEmpty { condition.wait() }
                    let job = jobs.removeFirst()
                    condition.unlock()
                    job.body()
                }
            }
            thread.name = "nbdtop-test-launcher"
            thread.start()
        }

        func submit(_ job: Job) {
            condition.lock()
            jobs.append(job)
            condition.signal()
            condition.unlock()
        }
    }

    private static let worker = Worker()

    /// Runs `body` on the launcher thread and returns its result (blocking the caller
    /// until then).
    public static func run<T>(_ body: @escaping @Sendable () throws -> T) throws -> T {
        // Already on the launcher thread (a nested call): waiting for ourselves would deadlock.
        if worker.isCurrentThread { return try body() }
        let done = DispatchSemaphore(value: 0)
        let box = ResultBox<T>()
        worker.submit(Job {
            box.result = Result { try body() }
            done.signal()
        })
        done.wait()
        return try box.result!.get()
    }
}

private final class ResultBox<T>: @unchecked Sendable {
    var result: Result<T, any Error>?
}
