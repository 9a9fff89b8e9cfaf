/// A named part of the dashboard that a theme gives a style.
public enum ThemeRole: String, CaseIterable, Sendable, Hashable {
    /// Ordinary text.
    case normal
    /// The title bar: source and destination.
    case header
    /// The completed part of the progress bar, and the part still to do.
    case progress
    case progressEmpty = "progress_empty"
    /// Throughput figures.
    case rate
    /// Labels and less important text.
    case dim
    /// Column titles of the connection table.
    case tableHeader = "table_header"
    /// The "source" and "destination" group headings.
    case group
    /// The selected connection row.
    case selected
    /// Separator lines and boxes.
    case border
    /// The stall marker and stall figures.
    case stall
    /// Low and high bars of the rate sparkline.
    case sparklineLow = "sparkline_low"
    case sparklineHigh = "sparkline_high"
    /// The in-flight bar.
    case inflight
    /// Good news, warnings and errors in the event pane and state column.
    case ok
    case warning
    case error
    /// The PAUSED and FROZEN badges.
    case paused
    case frozen
    /// The footer line and its key names.
    case footer
    case footerKey = "footer_key"
    /// The help overlay.
    case help

    /// Attributes added when there is no colour (monochrome or 8 colours), so the role
    /// stays distinguishable without it.
    public var fallbackAttributes: CellAttributes {
        switch self {
        case .header, .selected: return .reverse
        case .stall, .paused, .frozen: return [.bold, .reverse]
        case .tableHeader: return [.bold, .underline]
        case .group, .footerKey, .error, .warning, .sparklineHigh: return .bold
        case .dim, .progressEmpty: return .dim
        default: return []
        }
    }
}
