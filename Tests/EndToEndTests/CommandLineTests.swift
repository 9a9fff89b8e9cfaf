import Foundation
import NBDTestSupport
import Testing

/// The command line people expect: help, version, completions, the man page and
/// `make install`, and option values reported against their own option.
@Suite struct CommandLineTests {
    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../..").standardized.path

    @Test func copyHelpExitsZeroAndListsConnections() throws {
        for form in [["copy", "--help"], ["copy", "-h"], ["help", "copy"]] {
            let result = try CommandRunner.run([try CommandRunner.nbdtopBinary()] + form)
            #expect(result.status == 0, "\(form): \(result.stderr)")
            #expect(result.stdout.contains("--connections"), "\(form): \(result.stdout)")
            #expect(result.stdout.contains("--metrics"), "\(form)")
        }
    }

    @Test(arguments: ["copy", "info", "ls", "attach", "demo", "proxy"])
    func everyCommandHasHelp(command: String) throws {
        let result = try nbdtop(command, "--help")
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("USAGE: nbdtop \(command)"), "\(result.stdout)")
        // A `\\` where a line continuation was meant shows as a stray backslash.
        #expect(!result.stdout.contains("\\"), "a stray backslash in the help:\n\(result.stdout)")
    }

    @Test(arguments: ["--version", "-V"])
    func versionExitsZero(flag: String) throws {
        let result = try nbdtop(flag)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.range(of: #"^nbdtop [0-9]+\.[0-9]+\.[0-9]+\n$"#, options: .regularExpression) != nil, "\(result.stdout)")
    }

    @Test(arguments: [("bash", "-F _nbdtop nbdtop"), ("zsh", "#compdef nbdtop"), ("fish", "complete -c 'nbdtop'")])
    func completionScriptGenerates(shell: String, marker: String) throws {
        let result = try nbdtop("--generate-completion-script", shell)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains(marker), "\(result.stdout.prefix(300))")
        #expect(result.stdout.contains("connections"), "the copy command's options are in it")
    }

    /// `make install` with DESTDIR and PREFIX, installing the binary under test (no release
    /// build): binary, themes, completions where Debian looks, and a man page `man` renders.
    @Test func makeInstallPutsEverythingInPlace() throws {
        let destination = try TemporaryDirectory(prefix: "nbdtop-install")
        defer { destination.remove() }
        let install = try CommandRunner.run(["make", "-C", Self.repositoryRoot, "install", "DESTDIR=\(destination.path)",
                                             "PREFIX=/usr", "INSTALL_BIN=\(try CommandRunner.nbdtopBinary())"])
        #expect(install.status == 0, "\(install.stdout)\(install.stderr)")
        let root = destination.path
        for path in ["/usr/bin/nbdtop", "/usr/share/nbdtop/themes/default.theme", "/usr/share/nbdtop/themes/mono.theme",
                     "/usr/share/bash-completion/completions/nbdtop", "/usr/share/zsh/vendor-completions/_nbdtop",
                     "/usr/share/fish/vendor_completions.d/nbdtop.fish", "/usr/share/man/man1/nbdtop.1"] {
            let size = (try? FileManager.default.attributesOfItem(atPath: root + path)[.size] as? Int) ?? 0
            #expect(size > 0, "\(path) missing or empty")
        }
        #expect(FileManager.default.isExecutableFile(atPath: root + "/usr/bin/nbdtop"))
        let version = try CommandRunner.run([root + "/usr/bin/nbdtop", "--version"])
        #expect(version.status == 0 && version.stdout.hasPrefix("nbdtop "), "\(version.stderr)")
        let bash = try String(contentsOfFile: root + "/usr/share/bash-completion/completions/nbdtop", encoding: .utf8)
        #expect(bash.contains("-F _nbdtop nbdtop"))

        let man = try CommandRunner.run(["/usr/bin/env", "MANWIDTH=100", "man", "--warnings", "-l", root + "/usr/share/man/man1/nbdtop.1"])
        #expect(man.status == 0, "\(man.stderr)")
        #expect(man.stderr.isEmpty, "groff warnings: \(man.stderr)")
        for section in ["NAME", "SYNOPSIS", "COMMANDS", "ENDPOINTS AND URIS", "COPY OPTIONS", "METRICS", "JSON LINES", "EXIT STATUS"] {
            #expect(man.stdout.contains("\n\(section)\n"), "section \(section)")
        }
        for word in ["nbd+unix:///", "--connections", "--metrics", "info --map", "bytes_done", "143"] {
            #expect(man.stdout.contains(word), "\(word) in the man page")
        }
    }

    /// A request size below the default zero-detection block is fine on its own: the
    /// default follows it, and nothing complains about --sparse.
    @Test func smallRequestSizeAloneCopies() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let result = try nbdtop("copy", "--no-tui", "--no-control", "--request-size", "3K", "--",
                                "[", "nbdkit", "-r", "pattern", "1M", "]", directory.file("out.img"))
        #expect(result.status == 0, "\(result.stderr)")
        #expect(!result.stderr.contains("sparse"), "\(result.stderr)")
        #expect(try ImageCheck.firstPatternMismatch(inFile: directory.file("out.img")) == nil)
    }

    /// Each bad size or duration is reported against its own option, on one line, exit 2.
    @Test(arguments: [
        (["--request-size", "3X"], "--request-size"),
        (["--request-size", "100"], "--request-size"),
        (["--request-size", "1K", "--sparse", "4K"], "--sparse"),
        (["--sparse", "many"], "--sparse"),
        (["--queue-size", "lots"], "--queue-size"),
        (["--interval", "50ms"], "--interval"),
        (["--interval", "soon"], "--interval"),
        (["--reconnect", "forever"], "--reconnect"),
        (["--stall-threshold", "0"], "--stall-threshold"),
        (["--checkpoint", "1G,2G"], "--checkpoint"),
        (["--metrics", "localhost:99999"], "--metrics"),
        (["--metrics", "::1:9100"], "--metrics"),
    ])
    func badValueNamesItsOption(arguments: [String], option: String) throws {
        let result = try CommandRunner.run([try CommandRunner.nbdtopBinary(), "copy", "--no-tui"] + arguments + ["null:", "null:"])
        #expect(result.status == 2, "\(arguments): \(result.stderr)")
        let first = result.stderr.split(separator: "\n").first.map(String.init) ?? ""
        #expect(first.contains(option), "\(arguments): \(result.stderr)")
        let others = ["--request-size", "--sparse", "--queue-size", "--interval", "--metrics"].filter { $0 != option }
        #expect(!others.contains { first.contains($0) }, "\(arguments) blames another option: \(first)")
    }

    /// A usage error is its line, the option's help when a value was bad, and where to find
    /// the command's help; not the parser's usage block.
    @Test(arguments: [(["copy", "null:"], "nbdtop copy"), (["info", "--bogus", "x"], "nbdtop info"),
                      (["proxy"], "nbdtop proxy"), (["bogus"], "nbdtop")])
    func usageErrorsPointToTheirCommandsHelp(arguments: [String], command: String) throws {
        let result = try CommandRunner.run([try CommandRunner.nbdtopBinary()] + arguments)
        #expect(result.status == 2, "\(result.stderr)")
        let lines = result.stderr.split(separator: "\n").map(String.init)
        #expect(lines.count == 2, "\(result.stderr)")
        #expect(lines.first?.hasPrefix("nbdtop: ") == true)
        #expect(lines.last == "Run '\(command) --help' for usage.", "\(result.stderr)")
        #expect(!result.stderr.contains("Usage:"))
    }
}
