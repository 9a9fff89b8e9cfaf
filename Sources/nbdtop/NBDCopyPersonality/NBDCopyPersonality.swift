import NBDCopy

#if canImport(Glibc)
import Glibc
#endif

/// nbdtop run under the name `nbdcopy` (a symlink earlier in PATH): `nbdtop copy` with
/// nbdcopy's command line, so that programs which run nbdcopy, such as virt-v2v, copy
/// with nbdtop and can be watched with `nbdtop attach`.
///
/// It never opens the dashboard: its caller owns the terminal. It exits as nbdcopy does:
/// 0 when the copy succeeded, 1 for any mistake or failure, and a copy stopped by a
/// signal ends, after stopping cleanly, by that signal. The copy itself runs through
/// `CopySession`, as `nbdtop copy`'s does.
enum NBDCopyPersonality {
    static let programName = "nbdcopy"

    /// Whether the program was started as `nbdcopy` (`argv[0]`'s last path component).
    static func isSelected(by programPath: String) -> Bool {
        programPath.split(separator: "/").last == Substring(programName)
    }

    /// Runs the command line after `argv[0]` and exits.
    static func main(_ arguments: [String]) async -> Never {
        let status = await run(arguments)
        if let stopSignal = StopSignal.allCases.first(where: { $0.exitStatus == status }) {
            // nbdcopy does not catch these signals: its parent sees it killed by one.
            signal(stopSignal.number, SIG_DFL)
            raise(stopSignal.number)
        }
        exit(status)
    }

    /// Runs the command line; returns the exit status (a stop signal's 128 + its number).
    static func run(_ arguments: [String]) async -> Int32 {
        let (items, failure) = CommandLineScanner.scan(arguments)
        var settings = NBDCopyArguments()
        for item in items {
            switch item {
            case .operand(let word):
                settings.operands.append(word)
            case .option(.help, _):
                OutputFile.standardOutput.write(NBDCopyUsage.text)
                return 0
            case .option(.version, _):
                OutputFile.standardOutput.write(NBDCopyUsage.version)
                return 0
            case .option(.longOptions, _):
                OutputFile.standardOutput.write(lines(NBDCopyOption.longOptionList))
                return 0
            case .option(.shortOptions, _):
                OutputFile.standardOutput.write(lines(NBDCopyOption.shortOptionList))
                return 0
            case .option(let option, let value):
                do {
                    try settings.apply(option, value: value)
                } catch {
                    return fail(error.message)
                }
            }
        }
        if let failure { return fail(failure.message, withUsage: true) }

        let configuration: CopyConfiguration
        let session: CopySession
        do {
            configuration = try settings.configuration(cpuCores: sysconf(Int32(_SC_NPROCESSORS_ONLN)))
            session = try CopySession(configuration)
        } catch is NBDCopyUsageError {
            return fail(nil, withUsage: true)
        } catch {
            return fail("\(error)")
        }
        let status = await session.run()
        return status == 0 || StopSignal.allCases.contains { $0.exitStatus == status } ? status : 1
    }

    /// Reports a mistake as nbdcopy does (`nbdcopy: ...`, the usage after a getopt
    /// error); returns nbdcopy's status for it.
    private static func fail(_ message: String?, withUsage: Bool = false) -> Int32 {
        if let message { printError("\(programName): \(message)") }
        if withUsage { OutputFile.standardError.write(NBDCopyUsage.text) }
        return 1
    }

    private static func lines(_ words: [String]) -> String {
        words.map { $0 + "\n" }.joined()
    }
}
