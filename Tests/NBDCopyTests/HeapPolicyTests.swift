import Foundation
import NBDTestSupport
import Testing

@testable import NBDCopy

/// The heap policy keeps freed receive buffers mapped: buffers freed in the order they
/// came and allocated again land on pages that are already there.
@Suite struct HeapPolicyTests {
    /// A user's own malloc tuning is left alone.
    @Test func glibcTunablesForMallocWin() {
        #expect(!HeapPolicy.keepFreedBuffersMapped(glibcTunables: "glibc.malloc.trim_threshold=1048576"))
    }

    /// Rounds of a 16 MiB request's worth of 256 KiB buffers, each written through and
    /// freed first to last, counted in page faults, not in time, by `HeapPolicyProbe` in a
    /// fresh process (why: its own comment). Under the policy the pages are reused after
    /// the first round; under glibc's defaults every round faults about once a page.
    ///
    /// Not under `make sanitize`: a sanitizer's allocator replaces glibc's, and the policy
    /// is glibc's.
    @Test(.disabled(if: ProcessInfo.processInfo.environment["NBDTOP_SANITIZER"] != nil, "a sanitizer's allocator replaces glibc's"))
    func freedBuffersAreReusedWithoutFaults() throws {
        let underPolicy = try Self.probe("policy"), underDefaults = try Self.probe("defaults")
        #expect(underPolicy.fewestFaults < underPolicy.pagesPerRound / 8,
                "under the policy the best round faulted \(underPolicy.fewestFaults) times in \(underPolicy.pagesPerRound) pages")
        // The count itself works: the same rounds fault again without the policy.
        #expect(underDefaults.fewestFaults > underDefaults.pagesPerRound / 2,
                "under glibc's defaults the best round faulted only \(underDefaults.fewestFaults) times in \(underDefaults.pagesPerRound) pages")
    }

    private static func probe(_ mode: String) throws -> (fewestFaults: Int, pagesPerRound: Int) {
        let result = try CommandRunner.run([try CommandRunner.builtExecutable("HeapPolicyProbe"), mode], timeout: .seconds(60))
        let fields = result.stdout.split(whereSeparator: \.isWhitespace).compactMap { Int($0) }
        guard result.status == 0, fields.count == 2 else {
            throw TestSupportError("HeapPolicyProbe \(mode) ended with \(result.status): \(result.stdout) \(result.stderr)")
        }
        return (fields[0], fields[1])
    }
}
