/// A key press, as the terminal layer reports it.
public enum Key: Sendable, Hashable {
    case character(Character)
    case up, down, left, right
    case pageUp, pageDown, home, end
    case enter, escape, backspace, tab
    /// F1 … F12.
    case function(Int)
    /// The terminal changed size.
    case resize
    /// A mouse press or wheel turn at a screen position.
    case mouse(MouseEvent)
    /// A key the dashboard has no name for (the terminal's code).
    case other(Int32)

    /// How help and footer write the key: `+`, `space`, `↑`, `F1`.
    public var displayName: String {
        switch self {
        case .character(" "): return "space"
        case .character(let character): return String(character)
        case .up: return "↑"
        case .down: return "↓"
        case .left: return "←"
        case .right: return "→"
        case .pageUp: return "PgUp"
        case .pageDown: return "PgDn"
        case .home: return "Home"
        case .end: return "End"
        case .enter: return "Enter"
        case .escape: return "Esc"
        case .backspace: return "Backspace"
        case .tab: return "Tab"
        case .function(let number): return "F\(number)"
        case .resize: return "resize"
        case .mouse: return "mouse"
        case .other(let code): return "key \(code)"
        }
    }
}

/// What the mouse did, and where (row and column of the screen, from 0).
public enum MouseEvent: Sendable, Hashable {
    case press(Position)
    case wheelUp(Position)
    case wheelDown(Position)
}
