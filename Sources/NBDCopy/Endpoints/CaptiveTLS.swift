import NBD

/// Whether a captive server's command turns TLS on, and where its certificates are.
///
/// A captive server is reached over a private Unix socket, but a server told to require
/// TLS refuses everything else, so nbdtop speaks TLS to it when the command asks for it:
/// - nbdkit `--tls=require` or `--tls=on`, with `--tls-certificates=DIR` (the server's
///   folder holds `ca-cert.pem`, which then verifies it) or `--tls-psk=FILE` (the same key
///   file, with the login name as the user, as libnbd does);
/// - qemu-nbd `--tls-creds ID` with `--object tls-creds-x509,id=ID,dir=DIR,...`, or with
///   `--object tls-creds-psk,id=ID,dir=DIR,...` (the folder's `keys.psk`, the login name as
///   the user, as for nbdkit).
/// Without a folder, the usual libnbd folders apply. Over a Unix socket the chain is
/// verified but not a host name.
enum CaptiveTLS {
    static func parameters(for command: [String]) -> NBDTLSParameters? {
        let options = Options(command)
        if let mode = options.value("--tls"), mode == "require" || mode == "on" {
            if let psk = options.value("--tls-psk") { return NBDTLSParameters(pskFile: psk) }
            return NBDTLSParameters(certificatesDirectory: options.value("--tls-certificates"))
        }
        if let credentials = options.value("--tls-creds") {
            for object in options.values("--object") {
                let fields = object.split(separator: ",").map(String.init)
                guard fields.contains("id=\(credentials)") else { continue }
                let directory = fields.first { $0.hasPrefix("dir=") }.map { String($0.dropFirst(4)) }
                switch fields.first {
                case "tls-creds-x509": return NBDTLSParameters(certificatesDirectory: directory)
                // qemu keeps the keys in the folder's keys.psk, in the same format as nbdkit's.
                case "tls-creds-psk": return NBDTLSParameters(pskFile: "\(directory ?? ".")/keys.psk")
                default: continue
                }
            }
            return NBDTLSParameters()
        }
        return nil
    }

    /// `--name=value` and `--name value` options of a command line.
    private struct Options {
        let arguments: [String]
        init(_ arguments: [String]) { self.arguments = arguments }

        func values(_ name: String) -> [String] {
            var result: [String] = []
            var index = 0
            while index < arguments.count {
                let argument = arguments[index]
                if argument.hasPrefix(name + "=") {
                    result.append(String(argument.dropFirst(name.count + 1)))
                } else if argument == name, index + 1 < arguments.count {
                    result.append(arguments[index + 1])
                    index += 1
                }
                index += 1
            }
            return result
        }

        func value(_ name: String) -> String? { values(name).last }
    }
}
