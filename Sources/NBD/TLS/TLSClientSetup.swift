import NIOCore
import NIOPosix
import NIOSSL
#if canImport(Glibc)
import Glibc
#endif

/// Everything one connection needs to start TLS for an `nbds` URI.
///
/// Built from the URI's `tls-*` parameters before connecting, so that a missing or broken
/// certificate is reported before any byte goes to the server.
struct TLSClientSetup: Sendable {
    let context: NIOSSLContext
    /// The name sent in SNI and checked against the certificate; nil for IP addresses
    /// (checked against the address connected to) and for Unix sockets.
    let serverHostname: String?
    /// What the server's certificate is checked against, for messages
    /// (`/dir/ca-cert.pem`, `the system's trusted roots`, `pre-shared key from FILE`).
    let trustDescription: String
    /// The name the certificate must carry, for messages; nil when no name is checked.
    let expectedName: String?
    /// The user of a pre-shared key; nil with certificates.
    let pskUsername: String?

    /// Where libnbd looks when the URI names no folder, in order.
    static func defaultCertificateDirectories() -> [String] {
        var directories: [String] = []
        if let home = getenv("HOME"), home.pointee != 0 {
            directories.append(String(cString: home) + "/.pki/libnbd")
        }
        directories.append("/etc/pki/libnbd")
        return directories
    }

    /// Builds the setup for `uri` on NIO's blocking pool (it reads certificate files).
    static func make(for uri: NBDURI) async throws -> TLSClientSetup {
        try await NIOThreadPool.singleton.runIfActive { try makeBlocking(for: uri) }
    }

    /// Builds the setup for `uri`, reading the files it names; throws `NBDError.tlsFailed`.
    @available(*, noasync)
    static func makeBlocking(for uri: NBDURI) throws(NBDError) -> TLSClientSetup {
        let parameters = uri.tlsParameters
        var configuration = TLSConfiguration.makeClientConfiguration()
        let trustDescription: String
        var expectedName: String?
        var pskUsername: String?

        if let pskFile = parameters.pskFile {
            let username = parameters.username ?? currentUserName()
            let key = try PreSharedKeyFile.key(for: username, in: pskFile)
            pskUsername = username
            configuration.pskClientProvider = { _ in
                PSKClientIdentityResponse(key: NIOSSLSecureBytes(key), identity: username)
            }
            // BoringSSL offers pre-shared keys in TLS 1.2 only, and with its own suites.
            configuration.maximumTLSVersion = .tlsv12
            configuration.cipherSuiteValues = [
                .TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA, .TLS_ECDHE_PSK_WITH_AES_256_CBC_SHA,
                .TLS_PSK_WITH_AES_128_CBC_SHA, .TLS_PSK_WITH_AES_256_CBC_SHA,
            ]
            configuration.certificateVerification = .none
            trustDescription = "the pre-shared key of '\(username)' in \(pskFile)"
        } else {
            let directory = parameters.certificatesDirectory
                ?? defaultCertificateDirectories().first(where: isDirectory)
            let caFile = directory.map { $0 + "/ca-cert.pem" }
            if let caFile, fileExists(caFile) {
                configuration.trustRoots = .file(caFile)
                trustDescription = caFile
            } else if let caFile, parameters.certificatesDirectory != nil, parameters.verifyPeer {
                throw NBDError.tlsFailed("cannot verify the server: \(caFile) does not exist")
            } else {
                trustDescription = "the system's trusted certificates"
            }
            if let directory {
                let certificateFile = directory + "/client-cert.pem"
                let keyFile = directory + "/client-key.pem"
                switch (fileExists(certificateFile), fileExists(keyFile)) {
                case (true, true):
                    do {
                        configuration.certificateChain = try NIOSSLCertificate.fromPEMFile(certificateFile).map { .certificate($0) }
                        configuration.privateKey = .privateKey(try NIOSSLPrivateKey(file: keyFile, format: .pem))
                    } catch {
                        throw NBDError.tlsFailed("cannot load the client certificate \(certificateFile) or its key \(keyFile): \(TLSFailure.describe(error))")
                    }
                case (true, false):
                    throw NBDError.tlsFailed("\(certificateFile) exists but \(keyFile) does not")
                case (false, true):
                    throw NBDError.tlsFailed("\(keyFile) exists but \(certificateFile) does not")
                case (false, false):
                    break
                }
            }
            if !parameters.verifyPeer {
                configuration.certificateVerification = .none
            } else {
                switch uri.transport {
                case .tcp(let host, _):
                    expectedName = parameters.hostname ?? host
                    configuration.certificateVerification = .fullVerification
                case .unix:
                    // A socket has no host name: check the chain, and the name only if one is given.
                    expectedName = parameters.hostname
                    configuration.certificateVerification = expectedName == nil ? .noHostnameVerification : .fullVerification
                }
            }
        }

        let context: NIOSSLContext
        do {
            context = try NIOSSLContext(configuration: configuration)
        } catch {
            throw NBDError.tlsFailed("cannot set up TLS with \(trustDescription): \(TLSFailure.describe(error))")
        }
        let sniName = expectedName.flatMap { isIPAddress($0) ? nil : $0 }
        return TLSClientSetup(context: context, serverHostname: sniName, trustDescription: trustDescription,
                              expectedName: expectedName, pskUsername: pskUsername)
    }

    private static func currentUserName() -> String {
        if let entry = getpwuid(geteuid()), let name = entry.pointee.pw_name {
            return String(cString: name)
        }
        return getenv("USER").map { String(cString: $0) } ?? "nbd"
    }

    private static func fileExists(_ path: String) -> Bool {
        access(path, F_OK) == 0
    }

    private static func isDirectory(_ path: String) -> Bool {
        var status = stat()
        return stat(path, &status) == 0 && status.st_mode & S_IFMT == S_IFDIR
    }

    static func isIPAddress(_ text: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, text, &v4) == 1 || inet_pton(AF_INET6, text, &v6) == 1
    }
}

extension TLSClientSetup {
    /// The error for a TLS handshake that failed with `error` after the server accepted
    /// `NBD_OPT_STARTTLS`.
    func failure(_ error: any Error) -> NBDError {
        let reason = TLSFailure.describe(error)
        if TLSFailure.isHostnameMismatch(error) {
            return .tlsFailed("the server accepted NBD_OPT_STARTTLS, but its certificate is not for '\(expectedName ?? "?")' (set tls-hostname= to the name it carries)")
        }
        if pskUsername != nil, TLSFailure.isEndOfFile(error) {
            return pskRejected
        }
        if TLSFailure.isVerificationFailure(error) {
            return .tlsFailed("the server accepted NBD_OPT_STARTTLS, but its certificate did not verify against \(trustDescription) (\(reason))")
        }
        return .tlsFailed("the server accepted NBD_OPT_STARTTLS, but the TLS handshake failed: \(reason)")
    }

    /// The error for a server that answered `NBD_OPT_STARTTLS` with the error `replyType`.
    static func refused(replyType: UInt32, message: String) -> NBDError {
        let detail = message.isEmpty ? "" : ": \(message)"
        return .tlsFailed("the server refused NBD_OPT_STARTTLS (\(NBDOptionReplyType.errorName(replyType)))\(detail); nbds:// never falls back to plaintext, so no export was asked for")
    }

    /// The error for a server that ended the connection after the TLS handshake, before
    /// an export was chosen: what a server that wants a client certificate does in TLS 1.3.
    func endedAfterHandshake(_ reason: String) -> NBDError {
        .tlsFailed("the TLS handshake finished, but the server then ended the connection before an export was chosen (\(reason)); it may want a client certificate or another key")
    }

    /// gnutls hangs up on a user it does not know or a key that does not match.
    private var pskRejected: NBDError {
        .tlsFailed("the server accepted NBD_OPT_STARTTLS, then ended the TLS handshake: it does not accept \(trustDescription) (unknown user or another key)")
    }

    /// The error for a server that hung up in the middle of the TLS handshake.
    var closedDuringHandshake: NBDError {
        if pskUsername != nil { return pskRejected }
        return .tlsFailed("the server accepted NBD_OPT_STARTTLS, then closed the connection during the TLS handshake (it may want a client certificate or another key)")
    }
}
