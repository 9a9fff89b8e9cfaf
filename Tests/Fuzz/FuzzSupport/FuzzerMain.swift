#if FUZZING
import CLibFuzzer
#endif
import Foundation

/// What one input did to the code under test.
public struct ReplayReport: Sendable {
    /// One line for people replaying files.
    public var summary: String
    /// Broken promises: a fuzzer crashes on any, a replay exits 1.
    public var violations: [String]

    public init(summary: String, violations: [String]) {
        self.summary = summary
        self.violations = violations
    }
}

/// The main of every fuzzer: libFuzzer's driver in fuzzing builds, a file replayer otherwise.
public enum FuzzerMain {
    #if FUZZING
    /// The code under test, for the C callback libFuzzer calls (which cannot capture it).
    /// libFuzzer calls from one thread at a time, and only after `run` has set it.
    nonisolated(unsafe) private static var testOneInput: (([UInt8]) -> ReplayReport)?
    #endif

    /// Built with `-DFUZZING` (and `-sanitize=fuzzer`): hands the command line to libFuzzer,
    /// which crashes on an input with violations and keeps it. Otherwise: replays each file
    /// named on the command line, one summary line each, and exits 1 on any violation.
    public static func run(_ test: @escaping ([UInt8]) -> ReplayReport) -> Never {
        #if FUZZING
        testOneInput = test
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv) { bytes, count in
            let report = FuzzerMain.testOneInput!(Array(UnsafeBufferPointer(start: bytes, count: count)))
            if !report.violations.isEmpty { fatalError(report.violations.joined(separator: "; ")) }
            return 0
        })
        #else
        var clean = true
        for path in CommandLine.arguments.dropFirst() {
            let report: ReplayReport
            do {
                report = test(Array(try Data(contentsOf: URL(fileURLWithPath: path))))
            } catch {
                print("\(path): \(error)")
                exit(2)
            }
            print("\(path): \(report.summary)")
            for violation in report.violations { print("  VIOLATION: \(violation)") }
            clean = clean && report.violations.isEmpty
        }
        exit(clean ? 0 : 1)
        #endif
    }
}
