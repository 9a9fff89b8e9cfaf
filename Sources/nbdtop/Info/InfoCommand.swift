import ArgumentParser
import NBD

/// `nbdtop info`: what a server offers, in nbdinfo's words.
struct InfoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Show what an NBD server offers: size, flags, block sizes, meta contexts, multi-conn; or its map of extents.",
        discussion: """
            URI is nbd://HOST[:PORT]/EXPORT, nbd+unix:///EXPORT?socket=PATH, or a socket path;
            nbds:// and nbds+unix:// for TLS (tls-certificates=DIR, tls-verify-peer=false,
            tls-hostname=NAME, tls-psk-file=FILE, tls-username=NAME in the query).
            With --json the output has the same structure and keys as 'nbdinfo --json'.
            --map prints the export's base:allocation extents, adjacent ones of one type merged, with \
            the columns and words of 'nbdinfo --map' (offset, length, type, description: data, hole, \
            zero, hole,zero); --totals sums them per type with the percentage of the export, as \
            'nbdinfo --map --totals'. A server without block status is an error, as for nbdinfo.
            Exit status: 0 ok, 1 the server could not be reached or refused, 2 usage error.
            """
    )

    @Flag(help: "Print JSON with nbdinfo's structure and key names.")
    var json = false

    @Flag(help: "List every export the server offers, with their details.")
    var list = false

    @Flag(help: "Print the export's map of extents (base:allocation), as 'nbdinfo --map'.")
    var map = false

    @Flag(help: "With --map: the total of each type of extent, as 'nbdinfo --map --totals'.")
    var totals = false

    @Argument(help: "The NBD URI or Unix socket path.")
    var uri: String

    func validate() throws {
        if totals && !map { throw ValidationError("--totals needs --map") }
        if map && list { throw ValidationError("--map and --list cannot be used together") }
    }

    func run() async throws {
        let location = try NBDURI.parse(uri)
        if map {
            let extents = try await ExtentMap.fetch(from: location)
            switch (totals, json) {
            case (false, false): OutputFile.standardOutput.write(extents.text)
            case (false, true): OutputFile.standardOutput.write(extents.json)
            case (true, false): OutputFile.standardOutput.write(extents.totalsText)
            case (true, true): OutputFile.standardOutput.write(extents.totalsJSON)
            }
            return
        }
        var options = NBDConnection.Options()
        options.listMetaContexts = true

        var targets = [location]
        if list {
            let exports = try await NBDConnection.listExports(at: location, options: options)
            targets = exports.map { location.withExportName($0.name) }
        }
        var reports: [ExportReport] = []
        for target in targets {
            let connection = try await NBDConnection.connect(to: target, options: options)
            await connection.disconnect()
            reports.append(ExportReport(uri: target, info: connection.info))
        }
        let handshake = reports.first?.info.handshake ?? "newstyle-fixed"
        let structured = reports.first?.info.structuredReplies ?? false
        let tls = reports.first?.info.tls
        if json {
            print(ExportReport.document(handshake: handshake, tls: tls, structured: structured, exports: reports).pretty)
        } else {
            print(ExportReport.protocolLine(handshake: handshake, tls: tls, structured: structured))
            for report in reports { print(report.text) }
        }
    }
}
