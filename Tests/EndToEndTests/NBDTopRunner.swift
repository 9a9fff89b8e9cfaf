import Foundation
import NBDTestSupport

/// Runs the real nbdtop binary: `try nbdtop("info", "--json", uri)`.
func nbdtop(_ arguments: String..., timeout: Duration = .seconds(120)) throws -> CommandResult {
    try CommandRunner.run([try CommandRunner.nbdtopBinary()] + arguments, timeout: timeout)
}

/// Runs a peer tool such as nbdinfo.
func peer(_ arguments: String...) throws -> CommandResult {
    try CommandRunner.run(arguments)
}

/// Parses a JSON document into Foundation objects.
func parseJSON(_ text: String) throws -> [String: Any] {
    guard let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
        throw TestSupportError("not a JSON object: \(text)")
    }
    return object
}
