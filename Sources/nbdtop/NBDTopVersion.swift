/// nbdtop's version: `nbdtop --version`, and the nbdcopy stand-in's `-V`.
enum NBDTopVersion {
    static let current = "0.1.0"
}
