import FuzzSupport
import NBD
import NIOEmbedded

/// Fuzzes the client's transmission-phase reply handling (`ReplyReplay` has the input format).
@main
enum NBDReplyFuzzer {
    static func main() {
        FuzzerMain.run { input in
            // Adding the handler to a fresh channel and starting transmission cannot fail.
            let channel = EmbeddedChannel()
            let outcome = try! ReplyReplay.run(input, on: channel)
            // Runs what the handler left on the loop, which frees the channel and handler.
            _ = try! channel.finish(acceptAlreadyClosed: true)
            let results = outcome.results.map { result in
                switch result {
                case .success: "ok"
                case .failure(let error): "\(error)"
                }
            }
            let closed = outcome.closeReason.map { "\($0)" } ?? "no"
            return ReplayReport(summary: "\(results.joined(separator: ", ")); closed: \(closed)", violations: outcome.violations)
        }
    }
}
