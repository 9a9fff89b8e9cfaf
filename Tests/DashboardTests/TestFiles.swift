#if canImport(Glibc)
import Glibc
#endif

/// Temporary folders and files for theme tests, without Foundation.
enum TestFiles {
    /// The repository's root (three levels above this file).
    static var repositoryRoot: String {
        var path = #filePath
        for _ in 0..<3 {
            path = String(path[..<path.lastIndex(of: "/")!])
        }
        return path
    }

    static var themesDirectory: String { repositoryRoot + "/Themes" }

    static func makeDirectory() -> String {
        var template = Array("/tmp/nbdtop-dashboard-XXXXXX".utf8CString)
        let path = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        return String(cString: path!)
    }

    static func makeDirectory(_ path: String) {
        var partial = ""
        for component in path.split(separator: "/") {
            partial += "/" + component
            mkdir(partial, 0o755)
        }
    }

    static func write(_ text: String, to path: String) {
        let file = fopen(path, "w")!
        fputs(text, file)
        fclose(file)
    }

    static func read(_ path: String) -> String? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        while true {
            let character = fgetc(file)
            if character == EOF { break }
            bytes.append(UInt8(character))
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func remove(_ path: String) {
        _ = system("rm -rf '\(path)'")
    }

    static func listThemes(_ directory: String) -> [String] {
        guard let handle = opendir(directory) else { return [] }
        defer { closedir(handle) }
        var names: [String] = []
        while let entry = readdir(handle) {
            var nameBuffer = entry.pointee.d_name
            let name = withUnsafeBytes(of: &nameBuffer) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name.hasSuffix(".theme") { names.append(name) }
        }
        return names.sorted()
    }
}
