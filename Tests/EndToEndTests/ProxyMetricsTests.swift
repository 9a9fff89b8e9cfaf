import Foundation
import NBDTestSupport
import Testing

/// `proxy --metrics`: a series per client connection, labelled with who the client is.
@Suite struct ProxyMetricsTests {
    @Test func eachClientHasItsSeries() throws {
        let source = try ServerProcess.nbdkit(["pattern", "16M"], options: ["-r"])
        defer { source.stop() }
        let proxy = try ProxyHarness(upstream: [source.uri], options: ["--metrics", "127.0.0.1:0"])
        defer { proxy.stop() }
        let match = proxy.command.stderr.range(of: #"http://127\.0\.0\.1:[0-9]+/metrics"#, options: .regularExpression)
        let url = String(proxy.command.stderr[try #require(match, "no metrics address: \(proxy.command.stderr)")])
        #expect(try peer("nbdcopy", "-C", "1", proxy.uri, "null:").status == 0)
        // nbdcopy read the whole image through its one connection; the next sample says so.
        let key = #"nbdtop_connection_bytes_total{lane="1",side="client",client="nbdcopy ["#
        var body = ""
        let counted = proxy.waitFor { _ in
            body = (try? MetricsTests.scrape(url).body) ?? ""
            return MetricsTests.parse(body).samples.contains { $0.key.hasPrefix(key) && $0.value == Double(16 << 20) }
        }
        #expect(counted, "\(body)")
        #expect(MetricsTests.parse(body).problems.isEmpty, "\(MetricsTests.parse(body).problems.prefix(5))")
        #expect(!body.contains("nbdtop_copy_"), "a proxy has no copy figures")
    }
}
