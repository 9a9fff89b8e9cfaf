import Dashboard
import NBD
import NBDCopy

/// Everything `nbdtop proxy` was told, checked.
struct ProxySettings: Sendable {
    /// Where to listen, and the text it was given as.
    var listen: NBDURI.Transport
    /// An NBD URI, or a captive server's command.
    var upstream: EndpointSpec
    var once: Bool
    var run: String?
    var statsJSONPath: String?
    var interval: Duration
    var stallThreshold: Duration?
    var slowThreshold: Duration?
    var verbose: Bool
    var control: ControlSocketSetting
    /// Show the dashboard; `themes` is then its theme cycle.
    var tui: Bool
    var themes: ThemeCycle?
    /// `--metrics`: where to serve Prometheus metrics, if anywhere.
    var metrics: MetricsAddress?
}

extension ProxySettings {
    /// Parses LISTEN: a Unix socket path, `nbd+unix:///?socket=PATH`, or `nbd://HOST:PORT`.
    static func listenAddress(_ text: String) throws(NBDError) -> NBDURI.Transport {
        if !text.contains("://") && !text.isEmpty { return .unix(path: text) }
        let uri = try NBDURI.parse(text)
        guard !uri.tls else { throw .invalidURI(text, reason: "the proxy cannot listen with TLS") }
        guard uri.exportName.isEmpty else {
            throw .invalidURI(text, reason: "the proxy passes export names through; LISTEN takes none")
        }
        return uri.transport
    }
}
