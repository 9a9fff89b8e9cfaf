import ArgumentParser
import NBD

struct Info: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show what an NBD server offers.")
    @Argument var uri: String
    func run() async throws {
        let parsed = try NBDURI.parse(uri)
        let connection = try await NBDConnection.connect(to: parsed)
        print(connection.info)
        await connection.disconnect()
    }
}
