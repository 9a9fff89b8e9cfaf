import Telemetry
/// What a control socket serves and steers: a running copy (or, later, a proxy).
///
/// The target encodes its own figures (the same objects as its `--stats-json` lines), so
/// the server stays independent of the schema and one encoder serves both outputs.
public protocol ControlTarget: Sendable {
    /// The members of the `hello` a client gets when it connects, after `"v"` and
    /// `"event"`: at least `"t"`, the start facts and the current snapshot. The server adds
    /// the recent events.
    func helloMembers() async -> [(String, JSONValue)]

    /// One `sample` line, as `--stats-json` writes it.
    func sampleLine() async -> String

    /// Carries out `command` (never `.interval`, which the server handles); returns the
    /// members to add to the `{"ok":true}` reply, or throws why it could not.
    func perform(_ command: ControlCommand) async throws(ControlCommandError) -> [(String, JSONValue)]
}
