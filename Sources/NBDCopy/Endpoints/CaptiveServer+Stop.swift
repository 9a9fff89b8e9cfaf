import NIOPosix
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

// Ending a captive server: reaping it, SIGTERM then SIGKILL, and removing its folder.
extension CaptiveServer {
    /// How the server ended, once it has (it is reaped then); nil while it runs.
    public var exitStatusIfExited: ExitStatus? {
        state.withLock { Self.poll(pid, &$0) }
    }

    /// Reaps the server if it has exited; call with the lock held, so a pid is never
    /// signalled after it was reaped (and perhaps reused).
    private static func poll(_ pid: pid_t, _ state: inout State) -> ExitStatus? {
        if let status = state.exitStatus { return status }
        var status: Int32 = 0
        let result = waitpid(pid, &status, WNOHANG)
        if result == pid {
            state.exitStatus = decode(status)
        } else if result < 0 && errno == ECHILD {
            state.exitStatus = .unknown
        }
        return state.exitStatus
    }

    private static func decode(_ status: Int32) -> ExitStatus {
        if status & 0x7f == 0 { return .exited((status >> 8) & 0xff) }
        return .killed(signal: status & 0x7f)
    }

    /// Sends `signal` unless the server has already exited.
    private func signalIfRunning(_ signal: Int32) {
        state.withLock { state in
            if Self.poll(pid, &state) == nil { kill(pid, signal) }
        }
    }

    /// Ends the server: SIGTERM, then SIGKILL if it is still there after `timeout`; reaps
    /// it and removes its folder. Runs the waiting on the thread pool.
    public func stop(timeout: Duration = .seconds(5)) async {
        do {
            try await NIOThreadPool.singleton.runIfActive { self.stopBlocking(timeout: timeout) }
        } catch {
            stopBlocking(timeout: timeout)
        }
    }

    /// `stop()` for synchronous code: blocks the calling thread up to `timeout`.
    public func stopBlocking(timeout: Duration = .seconds(5)) {
        let first = state.withLock { state -> Bool in
            defer { state.stopped = true }
            return !state.stopped
        }
        guard first else { return }
        signalIfRunning(SIGTERM)
        let deadline = ContinuousClock.now + timeout
        while exitStatusIfExited == nil && ContinuousClock.now < deadline {
            usleep(10_000)
        }
        if exitStatusIfExited == nil {
            signalIfRunning(SIGKILL)
            state.withLock { state in
                guard state.exitStatus == nil else { return }
                var status: Int32 = 0
                while true {
                    let result = waitpid(pid, &status, 0)
                    if result == pid {
                        state.exitStatus = Self.decode(status)
                        break
                    }
                    if result < 0 && errno != EINTR {
                        state.exitStatus = .unknown
                        break
                    }
                }
            }
        }
        Self.removeTree(directory)
    }

    /// Removes `path` and everything in it (only ever our own private folder).
    static func removeTree(_ path: String) {
        var status = stat()
        guard lstat(path, &status) == 0 else { return }
        if status.st_mode & S_IFMT == S_IFDIR {
            if let directory = opendir(path) {
                var names: [String] = []
                while let entry = readdir(directory) {
                    let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                        String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
                    }
                    if name != "." && name != ".." { names.append(name) }
                }
                closedir(directory)
                for name in names { removeTree(path + "/" + name) }
            }
            rmdir(path)
        } else {
            unlink(path)
        }
    }
}
