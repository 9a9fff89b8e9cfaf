import Telemetry

/// What the dashboard itself holds between frames: selection, freeze, help, the quit
/// question, refresh rate, theme choice and the event log. The copy's figures are not
/// here; they arrive as a `CopySnapshot` each frame.
public struct DashboardState: Sendable {
    /// Source and destination as the user named them (URI or path).
    public var sourceName: String
    public var destinationName: String
    /// `--requests`: the in-flight bar's full scale.
    public var requestsPerLane: Int
    /// The selected connection; nil when none is.
    public var selected: ConnectionID?
    /// The snapshot shown while the display is frozen; nil when live.
    public var frozenSnapshot: CopySnapshot?
    public var helpVisible = false
    /// `q` was pressed while the copy runs; the footer asks y/n.
    public var quitConfirmationPending = false
    /// Time between frames.
    public var refreshInterval: Duration {
        didSet { refreshInterval = RefreshInterval.clamped(refreshInterval) }
    }
    /// Theme names in cycle order, and the current one.
    public var themeNames: [String]
    public var themeIndex: Int
    public var eventLog: EventLog
    /// A line the program wants seen (the demo's "press + to add a lane").
    public var hint: String?
    public var glyphs: Glyphs
    /// The copy runs in another process (`nbdtop attach`): `q` detaches, `S` stops it.
    public var attached: Bool
    /// Over a proxy (`nbdtop proxy`): only `KeyTable.proxyActions` are shown and taken.
    public var proxy = false
    /// The header's TLS badge (`TLS`, `TLS src`, `TLS dst`); nil when nothing is encrypted.
    public var tls: String?

    /// The badge for the sides that use TLS.
    public static func tlsBadge(source: Bool, destination: Bool) -> String? {
        switch (source, destination) {
        case (true, true): return "TLS"
        case (true, false): return "TLS src"
        case (false, true): return "TLS dst"
        case (false, false): return nil
        }
    }
    /// The copy's rate over the whole transfer, and the moments the chart marks.
    public var throughput = ThroughputHistory()
    public private(set) var markers: [ChartMarker] = []
    /// The most markers kept; older ones go first.
    public static let markerCapacity = 500
    /// How the connection table is ordered.
    public var sort = TableSort()
    /// Columns the table leaves out (`nbdtop.conf`).
    var hiddenColumns: Set<TableColumn> = []
    /// Who each connection's peer is, by lane id (a proxy's clients); a client column
    /// is shown when there are any.
    public var connectionLabels: [Int: String] = [:]

    public init(sourceName: String, destinationName: String, requestsPerLane: Int,
                themeNames: [String] = ["default"], themeIndex: Int = 0,
                refreshInterval: Duration = RefreshInterval.default, glyphs: Glyphs = .unicode,
                hint: String? = nil, attached: Bool = false) {
        self.sourceName = sourceName
        self.destinationName = destinationName
        self.requestsPerLane = max(1, requestsPerLane)
        self.themeNames = themeNames.isEmpty ? ["default"] : themeNames
        self.themeIndex = min(max(0, themeIndex), max(0, themeNames.count - 1))
        self.refreshInterval = RefreshInterval.clamped(refreshInterval)
        self.eventLog = EventLog()
        self.glyphs = glyphs
        self.hint = hint
        self.attached = attached
    }

    public var isFrozen: Bool { frozenSnapshot != nil }

    /// The snapshot to draw: the frozen one while frozen, else `live`.
    public func displayed(_ live: CopySnapshot) -> CopySnapshot { frozenSnapshot ?? live }

    /// Adds an engine event to the event pane.
    public mutating func record(_ event: CopyEvent, at elapsed: Duration) {
        eventLog.append(EventLogEntry(event, elapsed: elapsed))
        if let marker = ChartMarker(event, at: elapsed) {
            markers.append(marker)
            if markers.count > Self.markerCapacity { markers.removeFirst(markers.count - Self.markerCapacity) }
        }
    }

    /// Takes a new live snapshot into the chart's history (frozen or not: the history
    /// keeps the whole transfer); the first one also brings the last minute's rates.
    public mutating func observe(_ snapshot: CopySnapshot) {
        throughput.seed(from: snapshot)
        throughput.observe(snapshot)
    }

    /// Adds a line of the program's own to the event pane.
    public mutating func log(_ text: String, severity: EventSeverity = .info, at elapsed: Duration) {
        eventLog.append(EventLogEntry(elapsed: elapsed, text: text, severity: severity))
    }
}
