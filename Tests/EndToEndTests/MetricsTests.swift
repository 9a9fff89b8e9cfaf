import Foundation
import NBDTestSupport
import Testing

/// `copy --metrics`: a real HTTP client (curl) scrapes the Prometheus endpoint while a
/// rate-limited copy runs.
@Suite struct MetricsTests {
    /// One scrape: the HTTP status and the body.
    static func scrape(_ url: String) throws -> (status: Int, body: String) {
        let result = try CommandRunner.run(["curl", "-sS", "--max-time", "30", "-w", "\n%{http_code}", url])
        guard result.status == 0, let newline = result.stdout.lastIndex(of: "\n") else {
            throw TestSupportError("curl \(url): \(result.stderr)")
        }
        return (Int(result.stdout[result.stdout.index(after: newline)...]) ?? 0, String(result.stdout[..<newline]))
    }

    /// Sample values by their full name with labels, e.g. `nbdtop_connection_bytes_total{lane="1",side="dst"}`;
    /// every line is checked against the text exposition format on the way.
    static func parse(_ body: String) -> (samples: [String: Double], problems: [String]) {
        var samples: [String: Double] = [:], problems: [String] = []
        var types: [String: String] = [:]
        let name = #"[a-zA-Z_:][a-zA-Z0-9_:]*"#
        let labels = #"\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*")(,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*")*\}"#
        let value = #"(-?[0-9.eE+-]+|\+Inf|-Inf|NaN)"#
        for line in body.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            if line.isEmpty { continue }
            if line.hasPrefix("# HELP ") {
                if line.range(of: "^# HELP \(name) .+$", options: .regularExpression) == nil { problems.append("bad HELP: \(line)") }
            } else if line.hasPrefix("# TYPE ") {
                let parts = line.split(separator: " ")
                guard parts.count == 4, ["counter", "gauge", "histogram"].contains(String(parts[3])) else {
                    problems.append("bad TYPE: \(line)")
                    continue
                }
                types[String(parts[2])] = String(parts[3])
            } else if line.range(of: "^\(name)(\(labels))? \(value)$", options: .regularExpression) != nil {
                let split = line.lastIndex(of: " ")!
                let key = String(line[..<split])
                let base = String(key.prefix { $0 != "{" })
                let family = types[base] ?? types[base.replacingOccurrences(of: #"_(bucket|sum|count)$"#, with: "", options: .regularExpression)]
                if family == nil { problems.append("sample before its TYPE: \(line)") }
                if let type = family, type == "counter", !base.hasSuffix("_total") { problems.append("counter without _total: \(line)") }
                samples[key] = Double(line[line.index(after: split)...])
            } else {
                problems.append("not exposition format: \(line)")
            }
        }
        return (samples, problems)
    }

    @Test func scrapeDuringACopy() throws {
        // 48 MiB at about 6 MB/s in all, over 2 lanes: some 8 s.
        let source = try ServerProcess.nbdkit(["pattern", "48M", "rate=48M", "burstiness=0.1"], filters: ["rate"], options: ["-r"])
        defer { source.stop() }
        let copy = try BackgroundCommand([try CommandRunner.nbdtopBinary(), "copy", "--no-tui", "--no-control", "-C", "2",
                                          "--no-extents", "--interval", "250ms", "--metrics", "127.0.0.1:0", source.uri, "null:"])
        defer { copy.stop() }
        var url = ""
        #expect(copy.waitUntil(timeout: .seconds(60)) {
            guard let match = copy.stderr.range(of: #"http://127\.0\.0\.1:[0-9]+/metrics"#, options: .regularExpression) else { return false }
            url = String(copy.stderr[match])
            return true
        }, "\(copy.stderr)")
        try #require(!url.isEmpty)

        var firstBytes: [String: Double] = [:]
        var rose = false
        var checked = false
        let deadline = ContinuousClock.now + .seconds(120)
        while !rose && copy.exitStatus == nil && ContinuousClock.now < deadline {
            let (status, body) = try Self.scrape(url)
            #expect(status == 200)
            let (samples, problems) = Self.parse(body)
            #expect(problems.isEmpty, "\(problems.prefix(5))")
            let connectionBytes = samples.filter { $0.key.hasPrefix("nbdtop_connection_bytes_total{") }
            if !checked, let done = samples["nbdtop_copy_done_bytes"], done > 0 {
                checked = true
                // One frame: the destination connections' bytes are the copy's done bytes.
                let destinations = connectionBytes.filter { $0.key.contains(#"side="dst""#) }.values.reduce(0, +)
                #expect(destinations == done - (samples["nbdtop_copy_skipped_bytes"] ?? 0), "\(body)")
                #expect(samples["nbdtop_copy_size_bytes"] == Double(48 << 20))
                #expect(samples["nbdtop_copy_lanes"] == 2)
                // -C 2 fixes the lanes; the request size is tuned from 256 KiB up.
                #expect(samples["nbdtop_copy_lanes_auto"] == 0 && samples["nbdtop_copy_request_size_auto"] == 1, "\(body)")
                #expect((samples["nbdtop_copy_request_size_bytes"] ?? 0) >= 262_144, "\(body)")
                for key in [#"nbdtop_connection_bytes_total{lane="1",side="src"}"#, #"nbdtop_connection_bytes_total{lane="2",side="dst"}"#,
                            #"nbdtop_connection_requests_total{lane="1",side="src",op="read"}"#,
                            #"nbdtop_connection_request_duration_seconds_bucket{lane="1",side="dst",le="+Inf"}"#,
                            #"nbdtop_connection_in_flight_requests{lane="1",side="src"}"#,
                            #"nbdtop_connection_stall_episodes_total{lane="1",side="src"}"#,
                            #"nbdtop_connection_stalled_seconds_total{lane="1",side="src"}"#,
                            #"nbdtop_connection_slow_requests_total{lane="1",side="src"}"#,
                            #"nbdtop_connection_retries_total{lane="1",side="src"}"#,
                            #"nbdtop_connection_reconnects_total{lane="1",side="src"}"#] {
                    #expect(samples[key] != nil, "\(key) missing")
                }
                #expect(body.contains("# HELP nbdtop_connection_bytes_total "))
                #expect(body.contains("# TYPE nbdtop_connection_bytes_total counter"))
                #expect(body.contains("# TYPE nbdtop_connection_request_duration_seconds histogram"))
                let count = samples[#"nbdtop_connection_request_duration_seconds_count{lane="1",side="dst"}"#] ?? -1
                #expect(count == samples[#"nbdtop_connection_request_duration_seconds_bucket{lane="1",side="dst",le="+Inf"}"#])
            }
            if firstBytes.isEmpty {
                // From the first scrape that has both lanes' four connections.
                if connectionBytes.count == 4 { firstBytes = connectionBytes }
            } else {
                rose = firstBytes.allSatisfy { key, before in (connectionBytes[key] ?? 0) > before }
            }
            usleep(300_000)
        }
        #expect(checked, "never saw bytes done: \(copy.stderr)")
        #expect(rose, "every connection's byte counter rises while the copy runs")
        #expect(firstBytes.count == 4, "two lanes, two sides: \(firstBytes.keys.sorted())")

        let notFound = try Self.scrape(url.replacingOccurrences(of: "/metrics", with: "/other"))
        if copy.exitStatus == nil { #expect(notFound.status == 404) }
        #expect(copy.wait(timeout: .seconds(120)) == 0, "\(copy.stderr)")
    }

    /// A scraper that sends request after request and never reads an answer holds up
    /// neither the copy nor other scrapers.
    @Test func stuckScraperHoldsUpNothing() throws {
        let source = try ServerProcess.nbdkit(["pattern", "24M", "rate=48M", "burstiness=0.1"], filters: ["rate"], options: ["-r"])
        defer { source.stop() }
        let copy = try BackgroundCommand([try CommandRunner.nbdtopBinary(), "copy", "--no-tui", "--no-control", "--no-extents",
                                          "--interval", "250ms", "--metrics", "127.0.0.1:0", source.uri, "null:"])
        defer { copy.stop() }
        var port = ""
        #expect(copy.waitUntil(timeout: .seconds(60)) {
            guard let match = copy.stderr.range(of: #"127\.0\.0\.1:[0-9]+"#, options: .regularExpression) else { return false }
            port = String(copy.stderr[match].split(separator: ":")[1])
            return true
        }, "\(copy.stderr)")
        try #require(!port.isEmpty)
        let script = """
            import socket, sys, time
            s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            print("connected", flush=True)
            s.sendall(b"GET /metrics HTTP/1.1\\r\\nHost: stuck\\r\\n\\r\\n" * 20000)
            time.sleep(600)
            """
        let stuck = try BackgroundCommand(["/usr/bin/python3", "-c", script, port])
        defer { stuck.stop() }
        #expect(stuck.waitUntil(timeout: .seconds(30)) { stuck.stdout.contains("connected") }, "\(stuck.stderr)")
        if copy.exitStatus == nil {
            let (status, body) = try Self.scrape("http://127.0.0.1:\(port)/metrics")
            #expect(status == 200)
            #expect(body.contains("nbdtop_copy_done_bytes"))
        }
        #expect(copy.wait(timeout: .seconds(120)) == 0, "\(copy.stderr)")
    }

    @Test func busyAddressFailsNamingIt() throws {
        let source = try ServerProcess.nbdkit(["pattern", "16M", "rate=8M", "burstiness=0.1"], filters: ["rate"], options: ["-r"])
        defer { source.stop() }
        let first = try BackgroundCommand([try CommandRunner.nbdtopBinary(), "copy", "--no-tui", "--no-control",
                                           "--metrics", "127.0.0.1:0", source.uri, "null:"])
        defer { first.stop() }
        var address = ""
        #expect(first.waitUntil(timeout: .seconds(60)) {
            guard let match = first.stderr.range(of: #"127\.0\.0\.1:[0-9]+"#, options: .regularExpression) else { return false }
            address = String(first.stderr[match])
            return true
        })
        try #require(!address.isEmpty && first.exitStatus == nil)
        let second = try nbdtop("copy", "--no-tui", "--no-control", "--metrics", address, source.uri, "null:")
        #expect(second.status == 1, "\(second.stderr)")
        #expect(second.stderr.contains("--metrics \(address)"), "\(second.stderr)")
    }
}
