/// Cutting and padding text to a number of terminal columns.
public enum TextFitting {
    /// `text` cut to at most `width` columns, ending in `ellipsis` when cut.
    public static func truncate(_ text: String, to width: Int, ellipsis: String = "…") -> String {
        guard width > 0 else { return "" }
        if DisplayWidth.of(text) <= width { return text }
        let room = width - DisplayWidth.of(ellipsis)
        guard room > 0 else { return String(repeating: ".", count: width) }
        var result = "", used = 0
        for character in text {
            let characterWidth = DisplayWidth.of(character)
            if used + characterWidth > room { break }
            result.append(character)
            used += characterWidth
        }
        return result + ellipsis
    }

    /// `text` cut to at most `width` columns by dropping its middle, keeping both ends (for
    /// paths and URIs, whose ends say the most).
    public static func truncateMiddle(_ text: String, to width: Int, ellipsis: String = "…") -> String {
        guard width > 0 else { return "" }
        if DisplayWidth.of(text) <= width { return text }
        let room = width - DisplayWidth.of(ellipsis)
        guard room > 1 else { return truncate(text, to: width, ellipsis: ellipsis) }
        let headRoom = room / 3, tailRoom = room - headRoom
        var head = "", used = 0
        for character in text {
            if used + DisplayWidth.of(character) > headRoom { break }
            head.append(character)
            used += DisplayWidth.of(character)
        }
        var tail = "", tailUsed = 0
        for character in text.reversed() {
            if tailUsed + DisplayWidth.of(character) > tailRoom { break }
            tail.insert(character, at: tail.startIndex)
            tailUsed += DisplayWidth.of(character)
        }
        return head + ellipsis + tail
    }

    /// `text` padded with spaces (or cut) to exactly `width` columns, on the left when
    /// `alignRight`.
    public static func pad(_ text: String, to width: Int, alignRight: Bool = false) -> String {
        let cut = truncate(text, to: width)
        let padding = String(repeating: " ", count: max(0, width - DisplayWidth.of(cut)))
        return alignRight ? padding + cut : cut + padding
    }
}
