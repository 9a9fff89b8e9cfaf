import ArgumentParser

/// `--control PATH` and `--no-control`, shared by `copy` and `proxy`.
struct ControlOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The control socket's path, instead of PID.sock in the control folder.", valueName: "path"))
    var control: String?

    @Flag(name: .customLong("no-control"), help: "No control socket (the transfer cannot be listed or attached to).")
    var noControl = false

    func validate() throws {
        if control != nil && noControl { throw ValidationError("--control and --no-control contradict each other") }
    }

    var setting: ControlSocketSetting { noControl ? .off : control.map { .path($0) } ?? .standard }
}
