import ArgumentParser

/// `--metrics`'s value: where the Prometheus endpoint listens. `PORT` and `:PORT` mean the
/// loopback address; `HOST:PORT` and `[IPV6]:PORT` listen where asked (`0.0.0.0:9100` on
/// every interface). Port 0 lets the system pick one; the address in use is printed.
struct MetricsAddress: ExpressibleByArgument, Sendable, Equatable, CustomStringConvertible {
    var host: String
    var port: Int

    init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    init?(argument: String) {
        var hostPart = "", portPart = Substring(argument)
        if argument.hasPrefix("[") {
            guard let close = argument.firstIndex(of: "]") else { return nil }
            hostPart = String(argument[argument.index(after: argument.startIndex)..<close])
            let rest = argument[argument.index(after: close)...]
            guard rest.hasPrefix(":") else { return nil }
            portPart = rest.dropFirst()
            guard !hostPart.isEmpty else { return nil }
        } else if let colon = argument.lastIndex(of: ":") {
            hostPart = String(argument[..<colon])
            portPart = argument[argument.index(after: colon)...]
            // An IPv6 address needs brackets, or its last group would be taken for the port.
            guard !hostPart.contains(":") else { return nil }
        }
        guard !portPart.isEmpty, portPart.allSatisfy(\.isASCII), portPart.allSatisfy(\.isNumber),
              let port = Int(portPart), (0...65_535).contains(port) else { return nil }
        self.host = hostPart.isEmpty ? "127.0.0.1" : hostPart
        self.port = port
    }

    var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    static var defaultCompletionKind: CompletionKind { .default }
}
