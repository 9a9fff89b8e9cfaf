import Foundation
import NBDTestSupport

/// Validates `--stats-json` output against the documented schema, docs/stats-json.schema.json,
/// with a real JSON Schema validator (Python's jsonschema, from Debian's python3-jsonschema).
enum StatsSchema {
    static let schemaPath = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../docs/stats-json.schema.json").standardized.path

    /// Checks every line; returns one message per line that does not conform (empty when all do).
    static func violations(in text: String) throws -> [String] {
        let folder = try TemporaryDirectory(prefix: "nbdtop-schema")
        defer { folder.remove() }
        let linesPath = folder.file("lines.jsonl")
        try text.write(toFile: linesPath, atomically: true, encoding: .utf8)
        let script = """
            import json, sys
            import jsonschema
            schema = json.load(open(sys.argv[1]))
            validator = jsonschema.Draft202012Validator(schema)
            bad = 0
            for number, line in enumerate(open(sys.argv[2]), 1):
                errors = sorted(validator.iter_errors(json.loads(line)), key=lambda e: e.path)
                if errors:
                    bad += 1
                    best = jsonschema.exceptions.best_match(errors)
                    print(f"line {number}: {best.message} at {list(best.absolute_path)}: {line.strip()[:300]}")
            print(f"checked", number if 'number' in dir() else 0)
            """
        let result = try CommandRunner.run(["/usr/bin/python3", "-c", script, schemaPath, linesPath])
        guard result.status == 0 else { throw TestSupportError("schema check did not run: \(result.stderr)") }
        return result.stdout.split(separator: "\n").map(String.init).filter { $0.hasPrefix("line ") }
    }
}
