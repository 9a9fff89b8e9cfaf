import Foundation

/// The outcome of running a command to completion.
public struct CommandResult: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
}

/// Runs programs for tests with output captured in files (no pipe deadlocks) and a time limit.
public enum CommandRunner {
    /// Runs `arguments[0]` (looked up in PATH unless it has a slash) and waits up to `timeout`.
    public static func run(_ arguments: [String], timeout: Duration = .seconds(120),
                           environment: [String: String]? = nil) throws -> CommandResult {
        let directory = try TemporaryDirectory(prefix: "nbdtop-run")
        defer { directory.remove() }
        let outPath = directory.file("stdout"), errPath = directory.file("stderr")
        _ = FileManager.default.createFile(atPath: outPath, contents: nil)
        _ = FileManager.default.createFile(atPath: errPath, contents: nil)
        let pid = try Spawn.start(arguments, outputPath: outPath, errorPath: errPath, environment: environment)
        let deadline = ContinuousClock.now + timeout
        var status: Int32?
        while true {
            status = Spawn.poll(pid)
            if status != nil { break }
            if ContinuousClock.now > deadline {
                kill(pid, SIGKILL)
                _ = waitpid(pid, nil, 0)
                throw TestSupportError("\(arguments.joined(separator: " ")) did not finish within \(timeout)")
            }
            usleep(5_000)
        }
        let stdout = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
        let stderr = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
        return CommandResult(status: status!, stdout: stdout, stderr: stderr)
    }

    /// The full path of a program, searching PATH.
    public static func resolve(_ program: String) throws -> String {
        if program.contains("/") { return program }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for folder in path.split(separator: ":") {
            let candidate = "\(folder)/\(program)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        for folder in ["/usr/sbin", "/sbin", "/usr/bin"] where FileManager.default.isExecutableFile(atPath: "\(folder)/\(program)") {
            return "\(folder)/\(program)"
        }
        throw TestSupportError("\(program) is not installed (run make deps)")
    }

    /// The nbdtop binary under test: `$NBDTOP_BIN`, or the one beside the test bundle.
    public static func nbdtopBinary() throws -> String {
        if let fromEnvironment = ProcessInfo.processInfo.environment["NBDTOP_BIN"], !fromEnvironment.isEmpty {
            return fromEnvironment
        }
        return try builtExecutable("nbdtop")
    }

    /// An executable of this package built beside the test bundle (`swift build` builds them all).
    public static func builtExecutable(_ name: String) throws -> String {
        let executable = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        var folder = URL(fileURLWithPath: executable).deletingLastPathComponent()
        // The test runner may live inside a .xctest bundle folder.
        while folder.path != "/" {
            let candidate = folder.appendingPathComponent(name).path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            folder = folder.deletingLastPathComponent()
            if folder.lastPathComponent == ".build" { break }
        }
        throw TestSupportError("cannot find the \(name) binary near \(executable); run swift build first")
    }
}
