import ArgumentParser

@main
struct NBDTop: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nbdtop",
        abstract: "Copy disk images between NBD endpoints over many connections, and show what the transfer is doing.",
        subcommands: [Info.self]
    )
}
