import ArgumentParser

/// `--tui`/`--no-tui` and `--theme`, shared by `copy` and `proxy`.
struct DisplayOptions: ParsableArguments {
    @Flag(inversion: .prefixedNo, help: "Full-screen dashboard (the default when stdin and stdout are a terminal).")
    var tui: Bool?

    @Option(help: "Dashboard theme: a name (default, mono, high-contrast, light) or a file path.")
    var theme: String?
}
