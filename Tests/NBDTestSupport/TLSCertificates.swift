import Foundation

/// A certificate authority with a server (and optionally a client) certificate, made
/// with `openssl` in a private temp folder, laid out as nbdkit, qemu and libnbd expect.
///
/// - `serverDirectory`: `ca-cert.pem`, `server-cert.pem`, `server-key.pem` (for
///   `nbdkit --tls-certificates=` and qemu's `tls-creds-x509,dir=`);
/// - `clientDirectory`: `ca-cert.pem`, plus `client-cert.pem` and `client-key.pem` when
///   asked for (for `tls-certificates=` in an `nbds` URI).
public final class TLSCertificates: @unchecked Sendable {
    public let directory: TemporaryDirectory
    public var serverDirectory: String { directory.file("server") }
    public var clientDirectory: String { directory.file("client") }

    /// Makes a new authority and its certificates; the server's names are `subjectAltNames`
    /// (openssl's syntax, e.g. `DNS:localhost,IP:127.0.0.1`).
    public init(subjectAltNames: String = "DNS:localhost,IP:127.0.0.1", clientCertificate: Bool = false) throws {
        directory = try TemporaryDirectory(prefix: "nbdtop-tls")
        do {
            try make(subjectAltNames: subjectAltNames, clientCertificate: clientCertificate)
        } catch {
            directory.remove()
            throw error
        }
    }

    public func remove() { directory.remove() }

    private func make(subjectAltNames: String, clientCertificate: Bool) throws {
        let fileManager = FileManager.default
        for folder in [serverDirectory, clientDirectory] {
            try fileManager.createDirectory(atPath: folder, withIntermediateDirectories: false)
        }
        let ca = directory.file("ca-cert.pem"), caKey = directory.file("ca-key.pem")
        try openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                     "-keyout", caKey, "-out", ca, "-days", "2", "-subj", "/CN=nbdtop test CA",
                     "-addext", "basicConstraints=critical,CA:TRUE",
                     "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        try issue(name: "server", commonName: "localhost",
                  extensions: "subjectAltName=\(subjectAltNames)\nextendedKeyUsage=serverAuth\n", ca: ca, caKey: caKey,
                  into: serverDirectory)
        if clientCertificate {
            try issue(name: "client", commonName: "nbdtop-test-client", extensions: "extendedKeyUsage=clientAuth\n",
                      ca: ca, caKey: caKey, into: clientDirectory)
        }
        for folder in [serverDirectory, clientDirectory] {
            try fileManager.copyItem(atPath: ca, toPath: folder + "/ca-cert.pem")
        }
    }

    private func issue(name: String, commonName: String, extensions: String, ca: String, caKey: String, into folder: String) throws {
        let key = "\(folder)/\(name)-key.pem", certificate = "\(folder)/\(name)-cert.pem"
        let request = directory.file("\(name).csr"), extensionFile = directory.file("\(name).ext")
        try ("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n" + extensions)
            .write(toFile: extensionFile, atomically: true, encoding: .utf8)
        try openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                     "-keyout", key, "-out", request, "-subj", "/CN=\(commonName)"])
        try openssl(["x509", "-req", "-in", request, "-CA", ca, "-CAkey", caKey,
                     "-set_serial", String(UInt32.random(in: 1...UInt32.max)), "-days", "2",
                     "-extfile", extensionFile, "-out", certificate])
    }

    private func openssl(_ arguments: [String]) throws {
        let result = try CommandRunner.run([try CommandRunner.resolve("openssl")] + arguments, timeout: .seconds(60))
        guard result.status == 0 else {
            throw TestSupportError("openssl \(arguments.first ?? "") failed: \(result.stderr)")
        }
    }

    /// A pre-shared key file (`username:hexkey`, as `psktool` writes) with a new random
    /// key, named `name` in this folder.
    public func pskFile(username: String, name: String = "keys.psk") throws -> String {
        let path = directory.file(name)
        let key = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
        try "\(username):\(key)\n".write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }
}
