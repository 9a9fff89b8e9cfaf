import Foundation
import NBD
import NIOEmbedded
import Testing

/// Replays every committed fuzz corpus file through the fuzzers' entry points, so that a
/// regression shows up in `swift test` without libFuzzer.
///
/// Every input must leave the client's promises intact (no violation); the inputs recorded
/// from real servers (`real-*`) must also never look like a broken protocol.
@Suite struct FuzzCorpusTests {
    /// The committed corpus folder for one fuzzer (`Tests/Fuzz/Corpus/<name>`).
    static func corpus(_ name: String) -> [URL] {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        let folder = root.appendingPathComponent("Fuzz/Corpus/\(name)")
        let files = (try? FileManager.default.contentsOfDirectory(at: folder, includingPropertiesForKeys: nil)) ?? []
        return files.sorted { $0.lastPathComponent < $1.lastPathComponent }
    }

    static func isReal(_ file: URL) -> Bool { file.lastPathComponent.hasPrefix("real-") }

    @Test func corpusIsThere() {
        #expect(Self.corpus("Handshake").contains(where: Self.isReal))
        #expect(Self.corpus("Reply").contains(where: Self.isReal))
    }

    @Test(arguments: corpus("Handshake"))
    func handshake(_ file: URL) async throws {
        let outcome = await HandshakeReplay.run(Array(try Data(contentsOf: file)))
        #expect(outcome.violations == [])
        guard Self.isReal(file), case .failed(let error) = outcome.result else { return }
        switch error {
        case .unknownExport, .optionRefused: break
        default: Issue.record("a real server's handshake failed: \(error)")
        }
    }

    @Test(arguments: corpus("Reply"))
    func replies(_ file: URL) throws {
        let channel = EmbeddedChannel()
        let outcome = try ReplyReplay.run(Array(try Data(contentsOf: file)), on: channel)
        _ = try channel.finish(acceptAlreadyClosed: true)
        #expect(outcome.violations == [])
        guard Self.isReal(file) else { return }
        #expect(outcome.closeReason == .connectionClosed("server closed the connection"))
        for case .failure(let error) in outcome.results {
            if case .serverError = error { continue }
            Issue.record("a real server's reply failed: \(error)")
        }
        #expect(outcome.results.count > 1)
    }
}
