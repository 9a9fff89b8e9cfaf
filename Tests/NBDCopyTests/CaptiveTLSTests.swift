import NBD
@testable import NBDCopy
import Testing

/// Which captive commands nbdtop speaks TLS to, and with which folder.
@Suite struct CaptiveTLSTests {
    @Test func nbdkitRequireWithFolder() {
        let parameters = CaptiveTLS.parameters(for: ["nbdkit", "--tls=require", "--tls-certificates", "/pki", "memory", "1G"])
        #expect(parameters == NBDTLSParameters(certificatesDirectory: "/pki"))
        #expect(CaptiveTLS.parameters(for: ["nbdkit", "--tls", "on", "memory", "1G"]) == NBDTLSParameters())
        #expect(CaptiveTLS.parameters(for: ["nbdkit", "--tls=require", "--tls-psk=/k.psk", "null"]) == NBDTLSParameters(pskFile: "/k.psk"))
    }

    @Test func plaintextCommands() {
        #expect(CaptiveTLS.parameters(for: ["nbdkit", "memory", "1G"]) == nil)
        #expect(CaptiveTLS.parameters(for: ["nbdkit", "--tls=off", "memory", "1G"]) == nil)
        #expect(CaptiveTLS.parameters(for: ["qemu-nbd", "-f", "raw", "disk.img"]) == nil)
    }

    @Test func qemuNBDCredentialsObject() {
        let command = ["qemu-nbd", "--object", "tls-creds-x509,id=tls0,endpoint=server,dir=/q", "--tls-creds=tls0", "-f", "raw", "d"]
        #expect(CaptiveTLS.parameters(for: command) == NBDTLSParameters(certificatesDirectory: "/q"))
    }

    @Test func qemuNBDPreSharedKeyObject() {
        let command = ["qemu-nbd", "--object", "tls-creds-psk,id=k,endpoint=server,dir=/q", "--tls-creds", "k", "-f", "raw", "d"]
        #expect(CaptiveTLS.parameters(for: command) == NBDTLSParameters(pskFile: "/q/keys.psk"))
    }

    @Test func captiveURIUsesTLS() throws {
        let server = try CaptiveServer.start(["nbdkit", "--tls=require", "--tls-certificates=/nowhere", "memory", "1M"],
                                             logPath: "/dev/null")
        defer { server.stopBlocking() }
        #expect(server.uri.tls)
        #expect(server.uri.tlsParameters.certificatesDirectory == "/nowhere")
    }
}
