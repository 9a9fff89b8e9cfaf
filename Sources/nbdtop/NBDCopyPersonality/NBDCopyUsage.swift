/// What the stand-in prints for `--help` (on stdout) and after a usage mistake (on
/// stderr), and for `-V`.
enum NBDCopyUsage {
    /// nbdcopy's synopsis, in its layout (its first line too: scripts may look for it),
    /// then what differs under nbdtop.
    static let text = """

        Copy to and from an NBD server:

            nbdcopy [--allocated] [-C N|--connections=N]
                    [--destination-is-zero|--target-is-zero] [--flush]
                    [--no-extents] [-p|--progress|--progress=FD]
                    [--queue-size=N] [--request-size=N] [-R N|--requests=N]
                    [-S N|--sparse=N] [--synchronous] [-T N|--threads=N]
                    [-v|--verbose]
                    SOURCE DESTINATION

            SOURCE, DESTINATION := - | FILE | DEVICE | NBD-URI | [ CMD ARGS ... ]
            DESTINATION += null:

        Other options:

            nbdcopy --help
            nbdcopy -V|--version

        Examples:

            nbdcopy nbd://example.com local.img
            nbdcopy local.img nbd://example.com
            nbdcopy nbd://example.com - | file -
            cat disk1 disk2 | nbdcopy -- - [ qemu-nbd -f qcow2 output.qcow2 ]

        This is nbdtop run under the name nbdcopy: it copies as 'nbdtop copy' does, with
        nbdcopy's options and exit statuses (0 success, 1 any error), and without the
        dashboard; watch the copy with 'nbdtop attach' from another terminal. --blkhash
        and --blkhash-file are not supported. Read nbdcopy(1) for the options and
        nbdtop's README for the differences.

        """

    /// Two lines, as nbdcopy prints its own version then its library's; nbdtop has no
    /// libnbd, so the second says what answers instead.
    static var version: String {
        "nbdcopy (nbdtop) \(NBDTopVersion.current)\n"
            + "nbdtop \(NBDTopVersion.current): stand-in for nbdcopy, command line of libnbd 1.14 to 1.24\n"
    }
}
