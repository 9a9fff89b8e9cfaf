import NIOSSL

/// Short words for what swift-nio-ssl and BoringSSL report, for one-line messages.
enum TLSFailure {
    /// BoringSSL's reason names (`CERTIFICATE_VERIFY_FAILED`), or the error as Swift prints it.
    static func describe(_ error: any Error) -> String {
        if let extra = error as? NIOSSLExtraError {
            if extra == .failedToValidateHostname { return "the certificate is not for that host name" }
            return "\(extra)"
        }
        if let sslError = error as? NIOSSLError {
            switch sslError {
            case .handshakeFailed(let boringError), .shutdownFailed(let boringError):
                return describe(boringError)
            case .uncleanShutdown:
                return "the server closed the connection without ending TLS"
            default:
                return "\(sslError)"
            }
        }
        if let boringError = error as? BoringSSLError {
            return describe(boringError)
        }
        return "\(error)"
    }

    private static func describe(_ error: BoringSSLError) -> String {
        switch error {
        case .sslError(let stack), .unknownError(let stack):
            let reasons = stack.map { reason(of: $0) }
            return reasons.isEmpty ? "\(error)" : reasons.joined(separator: ", ")
        default:
            return "\(error)"
        }
    }

    /// `error:1000007d:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED at f:1` → the last name.
    private static func reason(of error: BoringSSLInternalError) -> String {
        var text = error.description
        if let at = text.firstRange(of: " at ") { text = String(text[..<at.lowerBound]) }
        let name = text.split(separator: ":").last.map(String.init) ?? text
        return String(name.drop(while: \.isWhitespace))
    }

    /// Whether `error` says the server's certificate did not verify.
    static func isVerificationFailure(_ error: any Error) -> Bool {
        describe(error).contains("CERTIFICATE_VERIFY_FAILED")
    }

    /// Whether `error` says the server hung up in the middle of the handshake.
    static func isEndOfFile(_ error: any Error) -> Bool {
        if case .handshakeFailed(.sslError(let stack))? = error as? NIOSSLError {
            return stack.contains(.eofDuringHandshake)
        }
        return false
    }

    /// Whether `error` says the certificate is for another name.
    static func isHostnameMismatch(_ error: any Error) -> Bool {
        (error as? NIOSSLExtraError) == .failedToValidateHostname
    }
}
