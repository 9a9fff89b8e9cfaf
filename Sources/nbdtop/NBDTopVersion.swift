/// nbdtop's version, for the nbdcopy stand-in's `-V`.
enum NBDTopVersion {
    static let current = "0.1.0"
}
