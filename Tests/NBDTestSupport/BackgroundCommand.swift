import Foundation

/// A program started in the background with its output in files, for tests that signal it
/// or watch its output while it runs. Ended by pid (SIGKILL) in `stop()` if still running.
public final class BackgroundCommand: @unchecked Sendable {
    public let arguments: [String]
    public let pid: pid_t
    public let directory: TemporaryDirectory
    public let outputPath: String
    public let errorPath: String
    private let lock = NSLock()
    private var status: Int32?

    public init(_ arguments: [String], environment: [String: String]? = nil) throws {
        self.arguments = arguments
        directory = try TemporaryDirectory(prefix: "nbdtop-bg")
        outputPath = directory.file("stdout")
        errorPath = directory.file("stderr")
        _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
        _ = FileManager.default.createFile(atPath: errorPath, contents: nil)
        do {
            pid = try Spawn.start(arguments, outputPath: outputPath, errorPath: errorPath, environment: environment)
        } catch {
            directory.remove()
            throw error
        }
    }

    deinit { stop() }

    /// The exit status (128 + signal when killed), or nil while it runs.
    public var exitStatus: Int32? {
        lock.withLock {
            if status == nil { status = Spawn.poll(pid) }
            return status
        }
    }

    /// Sends `signal` unless it has already exited.
    public func signal(_ signal: Int32) {
        if exitStatus == nil { kill(pid, signal) }
    }

    /// Waits up to `timeout` for the exit status; nil when it is still running.
    public func wait(timeout: Duration) -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let status = exitStatus { return status }
            if ContinuousClock.now > deadline { return nil }
            usleep(5_000)
        }
    }

    /// Polls `condition` every 10 ms until it holds; false after `timeout` or when the
    /// program exited without it holding.
    public func waitUntil(timeout: Duration, _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = ContinuousClock.now + timeout
        while true {
            if try condition() { return true }
            if exitStatus != nil { return try condition() }
            if ContinuousClock.now > deadline { return false }
            usleep(10_000)
        }
    }

    public var stdout: String { (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "" }
    public var stderr: String { (try? String(contentsOfFile: errorPath, encoding: .utf8)) ?? "" }

    /// Kills it if still running, reaps it and removes its folder.
    public func stop() {
        if exitStatus == nil {
            kill(pid, SIGKILL)
            _ = wait(timeout: .seconds(10))
        }
        directory.remove()
    }
}
