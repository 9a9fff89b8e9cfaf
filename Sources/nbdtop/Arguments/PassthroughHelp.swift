/// Whether arguments captured whole (`copy`'s SRC DST, `proxy`'s LISTEN UPSTREAM, which may
/// hold a captive server's own flags) ask for our help: a help flag before the `--` or `[`
/// that starts a captive server is ours, one after it is the server's.
enum PassthroughHelp {
    static func isRequested(in words: [String]) -> Bool {
        words.prefix { $0 != "--" && $0 != "[" }.contains { ["--help", "-h", "-help"].contains($0) }
    }
}
