/// The compiled-in default theme, used when no theme file is found and for every role a
/// theme file leaves out. Keep it identical to `Themes/default.theme` (a test checks).
enum DefaultTheme {
    static let text = """
    # nbdtop default theme: light text on a dark terminal background.
    # Format: role = [foreground] [on background] [bold] [dim] [underline] [reverse] [italic]
    # Colours: #rrggbb, #rgb, ANSI names (red, bright-blue, ...), a palette index 0-255,
    # or default (the terminal's own colour).

    normal         = default
    header         = #ffffff on #005f87 bold
    progress       = #5fafff
    progress_empty = #4e4e4e
    rate           = #87d787 bold
    dim            = #8a8a8a
    table_header   = #d0d0d0 on #303030 bold
    group          = #5fafd7 bold
    selected       = #ffffff on #5f5f87 bold
    border         = #6c6c6c
    stall          = #ff5f5f bold reverse
    sparkline_low  = #5f87af
    sparkline_high = #5fd7ff
    inflight       = #d7af5f
    ok             = #87d787
    warning        = #ffd75f bold
    error          = #ff5f5f bold
    paused         = #000000 on #ffd75f bold
    frozen         = #000000 on #87afff bold
    footer         = #bcbcbc on #262626
    footer_key     = #ffd75f on #262626 bold
    help           = #e4e4e4 on #1c1c1c

    """
}
