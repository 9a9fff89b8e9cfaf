/// Splits nbdcopy's command line into options and operands the way GNU `getopt_long`
/// does, which is what nbdcopy's users type against.
///
/// Options may come before, between or after the operands; `-Cvalue` and `-C value`,
/// `--name=value` and `--name value` (for a required value), clusters such as `-vp`, and
/// any unambiguous prefix of a long name (`--conn=4`). `--` ends the options and `-` is an
/// operand. Unlike getopt, the words from `[` to the next `]` are one captive server
/// command that is never read for options, so `[ nbdkit -r pattern 1G ]` needs no `--`
/// before it (with `--`, as nbdcopy's manual writes it, it means the same).
struct CommandLineScanner {
    /// One item of the command line, in order.
    enum Item: Equatable {
        case option(NBDCopyOption, value: String?)
        /// A SOURCE or DESTINATION word, or one word of a `[ ... ]` command with its brackets.
        case operand(String)
    }

    /// A mistake getopt would report, worded as glibc's getopt words it.
    struct Failure: Error, Equatable {
        var message: String
    }

    /// The items up to the first mistake, and that mistake if there is one: options take
    /// effect in order, so `--help` before a mistake still prints the help.
    static func scan(_ words: [String]) -> (items: [Item], failure: Failure?) {
        var items: [Item] = []
        var index = 0
        while index < words.count {
            let word = words[index]
            index += 1
            if word == "--" {
                items += words[index...].map(Item.operand)
                break
            }
            if word == "[" {
                let close = words[index...].firstIndex(of: "]") ?? words.count
                items += words[(index - 1)..<min(close + 1, words.count)].map(Item.operand)
                index = close + 1
                continue
            }
            do {
                if word.hasPrefix("--") {
                    items.append(try longOption(word, words: words, index: &index))
                } else if word.hasPrefix("-") && word != "-" {
                    items += try shortOptions(word, words: words, index: &index)
                } else {
                    items.append(.operand(word))
                }
            } catch {
                return (items, error)
            }
        }
        return (items, nil)
    }

    /// `--name`, `--name=value`, or `--name value` when the value is required.
    private static func longOption(_ word: String, words: [String], index: inout Int) throws(Failure) -> Item {
        let body = word.dropFirst(2)
        let name = String(body.prefix { $0 != "=" })
        let inlineValue = body.contains("=") ? String(body.drop { $0 != "=" }.dropFirst()) : nil
        let option = try match(name, spelled: word)
        switch option.argument {
        case .none:
            if inlineValue != nil { throw Failure(message: "option '--\(option.longName)' doesn't allow an argument") }
            return .option(option, value: nil)
        case .optional:
            return .option(option, value: inlineValue)
        case .required:
            if let inlineValue { return .option(option, value: inlineValue) }
            guard index < words.count else { throw Failure(message: "option '--\(option.longName)' requires an argument") }
            index += 1
            return .option(option, value: words[index - 1])
        }
    }

    /// The option named `name` exactly, or the only one it abbreviates.
    private static func match(_ name: String, spelled word: String) throws(Failure) -> NBDCopyOption {
        if let exact = NBDCopyOption.allCases.first(where: { $0.longName == name }) { return exact }
        let candidates = name.isEmpty ? [] : NBDCopyOption.allCases.filter { $0.longName.hasPrefix(name) }
        switch candidates.count {
        case 1:
            return candidates[0]
        case 0:
            throw Failure(message: "unrecognized option '\(word)'")
        default:
            let possibilities = candidates.map { "'--\($0.longName)'" }.joined(separator: " ")
            throw Failure(message: "option '\(word)' is ambiguous; possibilities: \(possibilities)")
        }
    }

    /// `-v`, `-vp`, `-C4`, `-C 4`.
    private static func shortOptions(_ word: String, words: [String], index: inout Int) throws(Failure) -> [Item] {
        var items: [Item] = []
        var rest = word.dropFirst()
        while let letter = rest.first {
            rest = rest.dropFirst()
            guard let option = NBDCopyOption.allCases.first(where: { $0.shortName == letter }) else {
                throw Failure(message: "invalid option -- '\(letter)'")
            }
            guard option.argument == .required else {
                items.append(.option(option, value: nil))
                continue
            }
            if !rest.isEmpty {
                items.append(.option(option, value: String(rest)))
            } else if index < words.count {
                items.append(.option(option, value: words[index]))
                index += 1
            } else {
                throw Failure(message: "option requires an argument -- '\(letter)'")
            }
            break
        }
        return items
    }
}
