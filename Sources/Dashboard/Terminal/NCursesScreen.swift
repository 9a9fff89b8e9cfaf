import CNCurses
import CNCursesShim
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The terminal, through ncursesw: the only code in the dashboard that talks to ncurses.
///
/// Starting it switches the terminal to full-screen mode (and arms the crash guard);
/// `draw` copies a `CellGrid` to the screen, touching only cells that changed since the
/// last frame, with one `wnoutrefresh`/`doupdate`; `readKey` reads keys without
/// blocking; `restore` ends full-screen mode and may be called any number of times.
/// Use it from one task or thread only (ncurses is not thread-safe); only
/// `restoreBeforeExit` may be called from anywhere.
public final class NCursesScreen {
    /// The colours this terminal shows, as the theme should be mapped.
    public let colorDepth: ColorDepth
    /// Whether the locale is UTF-8 (else draw with `Glyphs.ascii`).
    public let supportsUnicode: Bool
    /// The glyph set that fits the locale.
    public var glyphs: Glyphs { supportsUnicode ? .unicode : .ascii }

    private let window: UnsafeMutablePointer<WINDOW>
    private let screen: OpaquePointer
    private let mapper: ColorMapper
    private let hasDefaultColors: Bool
    private let maximumPairs: Int
    private var pairs: [PairKey: Int16] = [:]
    private var previous: CellGrid?
    private var ended = false

    private struct PairKey: Hashable {
        var foreground: Int16
        var background: Int16
    }

    /// Starts full-screen mode: sets the locale from the environment, opens the terminal,
    /// no echo, no line buffering, keypad keys, hidden cursor, colours when there are any.
    public init(environment: [String: String] = ProcessEnvironment.current()) throws(ScreenError) {
        guard isatty(STDIN_FILENO) == 1, isatty(STDOUT_FILENO) == 1 else { throw ScreenError.notATerminal }
        cncurses_setlocale_from_environment()
        supportsUnicode = cncurses_locale_is_utf8() != 0
        set_escdelay(25)
        // Before newterm, which already turns echo off: the modes to give back at once.
        nbdtop_terminal_guard_save_modes()
        guard let screen = cncurses_newterm() else { throw ScreenError.cannotStart(terminal: environment["TERM"]) }
        self.screen = screen
        set_term(screen)
        nbdtop_crash_guard_arm()
        nbdtop_terminal_guard_arm()
        guard let window = cncurses_stdscr() else {
            endwin()
            nbdtop_crash_guard_disarm()
            nbdtop_terminal_guard_disarm()
            throw ScreenError.cannotStart(terminal: environment["TERM"])
        }
        self.window = window
        cbreak()
        noecho()
        nonl()
        keypad(window, true)
        nodelay(window, true)
        cncurses_mouse_enable()
        curs_set(0)
        var depth = ColorDepth.monochrome
        var defaults = false
        if has_colors() {
            start_color()
            defaults = use_default_colors() == OK
            depth = ColorDepth.detect(colors: Int(cncurses_colors()), hasColors: true, environment: environment)
        } else {
            depth = ColorDepth.detect(colors: 0, hasColors: false, environment: environment)
        }
        colorDepth = depth
        mapper = ColorMapper(depth: depth)
        hasDefaultColors = defaults
        maximumPairs = min(Int(cncurses_color_pairs()), Int(Int16.max))
    }

    deinit { restore() }

    /// The terminal's current size.
    public var size: TerminalSize {
        TerminalSize(columns: Int(cncurses_columns(window)), rows: Int(cncurses_rows(window)))
    }

    /// Shows `grid`: writes the cells that differ from the last frame (all of them after a
    /// resize), then one `doupdate`.
    public func draw(_ grid: CellGrid) {
        guard !ended else { return }
        let full = previous?.size != grid.size
        if full { werase(window) }
        for row in 0..<grid.rows {
            for column in 0..<grid.columns {
                let cell = grid[row, column]
                if cell.isContinuation { continue }
                if !full, let previous, previous[row, column] == cell { continue }
                put(cell, row: row, column: column)
            }
        }
        previous = grid
        wnoutrefresh(window)
        doupdate()
    }

    /// Forgets the last frame so the next `draw` repaints everything (after a resize or
    /// when something else wrote to the terminal).
    public func invalidate() {
        previous = nil
        if !ended { clearok(window, true) }
    }

    /// The next key press, or nil when none is waiting. `timeoutMilliseconds` > 0 waits
    /// that long for one (blocking the calling thread).
    public func readKey(timeoutMilliseconds: Int32 = 0) -> Key? {
        guard !ended else { return nil }
        wtimeout(window, timeoutMilliseconds > 0 ? timeoutMilliseconds : 0)
        defer { if timeoutMilliseconds > 0 { nodelay(window, true) } }
        var code: wint_t = 0
        let result = wget_wch(window, &code)
        if result == ERR { return nil }
        if result == KEY_CODE_YES {
            if Int32(code) == KEY_RESIZE { previous = nil }
            if Int32(code) == cncurses_key_mouse() { return Self.mouseKey() }
            return Self.key(forKeyCode: Int32(code))
        }
        return Self.key(forCharacter: UInt32(code))
    }

    /// Ends full-screen mode and gives the terminal back as it was; safe to call again.
    public func restore() {
        guard !ended else { return }
        ended = true
        curs_set(1)
        endwin()
        nbdtop_crash_guard_disarm()
        nbdtop_terminal_guard_disarm()
        delscreen(screen)
    }

    /// Forgets a terminal that went away (SIGHUP) without writing to it or changing its
    /// modes: there is nothing to give back. Nothing is drawn afterwards; `restore` and
    /// `restoreBeforeExit` then do nothing.
    public func abandon() {
        guard !ended else { return }
        ended = true
        nbdtop_crash_guard_disarm()
        nbdtop_terminal_guard_disarm()
    }

    /// Gives the terminal back (modes as before, main screen, cursor shown) without
    /// ncurses, from any thread, even while another thread draws: for a process that exits
    /// right after (a second Ctrl-C), since the screen's own state is left as it was.
    /// Does nothing when no screen is open or it was already restored.
    public static func restoreBeforeExit() {
        _ = nbdtop_terminal_guard_restore()
    }

    // MARK: Cells

    private func put(_ cell: Cell, row: Int, column: Int) {
        var attributes = cncurses_a_normal()
        if cell.attributes.contains(.bold) { attributes |= cncurses_a_bold() }
        if cell.attributes.contains(.dim) { attributes |= cncurses_a_dim() }
        if cell.attributes.contains(.underline) { attributes |= cncurses_a_underline() }
        if cell.attributes.contains(.reverse) { attributes |= cncurses_a_reverse() }
        if cell.attributes.contains(.italic) { attributes |= cncurses_a_italic() }
        let pair = pairNumber(foreground: cell.foreground, background: cell.background)
        var characters: [wchar_t] = cell.character.unicodeScalars.prefix(4).map { wchar_t(bitPattern: $0.value) }
        if characters.isEmpty { characters = [wchar_t(32)] }
        characters.append(0)
        var complex = cchar_t()
        _ = characters.withUnsafeBufferPointer { setcchar(&complex, $0.baseAddress, attributes, pair, nil) }
        _ = mvwadd_wch(window, Int32(row), Int32(column), &complex)
    }

    /// The colour pair for two colours, made on first use; 0 (the terminal's colours) in
    /// monochrome or when pairs run out.
    private func pairNumber(foreground: ThemeColor, background: ThemeColor) -> Int16 {
        guard colorDepth != .monochrome else { return 0 }
        let key = PairKey(foreground: colorNumber(foreground, isForeground: true),
                          background: colorNumber(background, isForeground: false))
        if key.foreground == -1 && key.background == -1 { return 0 }
        if let pair = pairs[key] { return pair }
        let next = pairs.count + 1
        guard next < maximumPairs else { return 0 }
        init_pair(Int16(next), key.foreground, key.background)
        pairs[key] = Int16(next)
        return Int16(next)
    }

    /// A colour's ncurses number; -1 is the terminal's default (white on black without
    /// `use_default_colors`).
    private func colorNumber(_ color: ThemeColor, isForeground: Bool) -> Int16 {
        if case .indexed(let index) = mapper.map(color) { return Int16(index) }
        if hasDefaultColors { return -1 }
        return isForeground ? 7 : 0
    }

    // MARK: Keys

    /// The mouse event ncurses has waiting, as a key; `.other` for one the dashboard ignores.
    private static func mouseKey() -> Key {
        var row: Int32 = 0, column: Int32 = 0
        let at = { Position(row: Int(row), column: Int(column)) }
        switch cncurses_mouse_event(&row, &column) {
        case 1: return .mouse(.press(at()))
        case 2: return .mouse(.wheelUp(at()))
        case 3: return .mouse(.wheelDown(at()))
        default: return .other(cncurses_key_mouse())
        }
    }

    static func key(forKeyCode code: Int32) -> Key {
        switch code {
        case KEY_UP: return .up
        case KEY_DOWN: return .down
        case KEY_LEFT: return .left
        case KEY_RIGHT: return .right
        case KEY_PPAGE: return .pageUp
        case KEY_NPAGE: return .pageDown
        case KEY_HOME: return .home
        case KEY_END: return .end
        case KEY_ENTER: return .enter
        case KEY_BACKSPACE: return .backspace
        case KEY_RESIZE: return .resize
        default:
            for number in 1...12 where code == cncurses_key_f(Int32(number)) { return .function(number) }
            return .other(code)
        }
    }

    static func key(forCharacter value: UInt32) -> Key {
        switch value {
        case 27: return .escape
        case 10, 13: return .enter
        case 9: return .tab
        case 8, 127: return .backspace
        default:
            guard let scalar = Unicode.Scalar(value) else { return .other(Int32(bitPattern: value)) }
            return .character(Character(scalar))
        }
    }
}
