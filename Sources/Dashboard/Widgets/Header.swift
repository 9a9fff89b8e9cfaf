import Telemetry

/// The top rows: title bar with source, destination and badges; the progress bar; the
/// global figures (current and average rate, ETA, elapsed, stalls, lanes with `auto` or
/// `manual` and the tuner's last decision, or why that is the most; zero and skipped
/// bytes); and what limits the transfer now.
struct Header {
    let snapshot: CopySnapshot
    let state: DashboardState

    /// One header line: draws itself into its row.
    typealias LineBuilder = @Sendable (Header, inout CellGrid, Rect, Theme) -> Void

    /// The header's lines, top to bottom, one builder each; `DashboardLayout.headerRows`
    /// is their count.
    static let lines: [LineBuilder] = [
        { header, grid, line, theme in header.drawTitle(into: &grid, in: line, theme: theme) },
        { header, grid, line, theme in
            ProgressBar(snapshot: header.snapshot, glyphs: header.state.glyphs).draw(into: &grid, in: line, theme: theme) },
        { header, grid, line, theme in header.drawTiming(into: &grid, in: line, theme: theme) },
        { header, grid, line, theme in header.drawLanes(into: &grid, in: line, theme: theme) },
        { header, grid, line, theme in header.drawBottleneck(into: &grid, in: line, theme: theme) },
    ]

    func draw(into grid: inout CellGrid, in frame: Rect, theme: Theme) {
        for (index, line) in Self.lines.enumerated() where index < frame.rows {
            line(self, &grid, frame.line(index), theme)
        }
    }

    /// `bottleneck: source  source stalls 23% of the time (in-order replies): more lanes help`.
    private func drawBottleneck(into grid: inout CellGrid, in line: Rect, theme: Theme) {
        var runs = [TextRun("bottleneck: ", theme[.dim])]
        if let bottleneck = snapshot.bottleneck {
            runs.append(TextRun(Self.kindName(bottleneck.kind), theme[bottleneck.kind == .paused ? .paused : .warning].adding(.bold)))
            runs.append(TextRun("  " + bottleneck.detail, theme[.normal]))
        } else {
            runs.append(TextRun("measuring" + state.glyphs.ellipsis, theme[.dim]))
        }
        grid.write(runs.truncated(to: line.columns - 2, ellipsis: state.glyphs.ellipsis),
                   at: Position(row: line.row, column: line.column + 1), clip: line)
    }

    /// The verdict's kind in words.
    static func kindName(_ kind: Bottleneck.Kind) -> String {
        switch kind {
        case .paused: return "paused"
        case .source: return "source"
        case .destination: return "destination"
        case .laneLimit: return "lane limit"
        case .cpu: return "nbdtop CPU"
        case .requestWindow: return "request window"
        }
    }

    /// ` nbdtop  SRC → DST` on the header colour, badges at the right.
    private func drawTitle(into grid: inout CellGrid, in line: Rect, theme: Theme) {
        let style = theme[.header]
        grid.fill(line, style: style)
        var badges: [TextRun] = []
        if snapshot.paused { badges.append(TextRun(" PAUSED ", theme[.paused].adding(.bold))) }
        if state.isFrozen { badges.append(TextRun(" FROZEN ", theme[.frozen].adding(.bold))) }
        if let tls = state.tls { badges.append(TextRun(" \(tls) ", style.adding([.bold, .reverse]))) }
        let badgeRuns = badges.flatMap { [$0, TextRun(" ", style)] }
        let badgeWidth = badgeRuns.width
        let name = TextRun(" nbdtop ", style.adding(.bold))
        let arrow = " \(state.glyphs.arrow) "
        let room = line.columns - name.width - badgeWidth - DisplayWidth.of(arrow) - 1
        var source = state.sourceName, destination = state.destinationName
        if DisplayWidth.of(source) + DisplayWidth.of(destination) > room {
            let half = max(4, room / 2)
            let sourceRoom = max(4, min(DisplayWidth.of(source), room - min(DisplayWidth.of(destination), half)))
            source = TextFitting.truncateMiddle(source, to: sourceRoom, ellipsis: state.glyphs.ellipsis)
            destination = TextFitting.truncateMiddle(destination, to: max(4, room - DisplayWidth.of(source)), ellipsis: state.glyphs.ellipsis)
        }
        let titleRuns = [name, TextRun(" " + source, style), TextRun(arrow, style), TextRun(destination, style)]
        grid.write(titleRuns, at: Position(row: line.row, column: line.column),
                   clip: Rect(row: line.row, column: line.column, columns: line.columns - badgeWidth, rows: 1))
        grid.write(badgeRuns, at: Position(row: line.row, column: line.right - badgeWidth), clip: line)
    }

    /// Rates, ETA, elapsed and stalls.
    private func drawTiming(into grid: inout CellGrid, in line: Rect, theme: Theme) {
        let label = theme[.dim], value = theme[.normal]
        var timing: [[TextRun]] = [
            [TextRun("now ", label), TextRun(Format.rate(snapshot.bytesPerSecond), theme[.rate])],
            [TextRun("avg ", label), TextRun(Format.rate(snapshot.averageBytesPerSecond), value)],
            [TextRun("ETA ", label), TextRun(snapshot.eta.map(Format.clock) ?? "-", value)],
            [TextRun("elapsed ", label), TextRun(Format.clock(snapshot.elapsed), value)],
        ]
        let stalled = snapshot.connections.filter(\.stalled).count
        if stalled > 0 {
            timing.append([TextRun("\(state.glyphs.stall) \(stalled) stalled", theme[.stall].adding([.bold, .reverse]))])
        }
        FlowLayout.draw(timing, into: &grid, rows: [line], ellipsis: state.glyphs.ellipsis)
    }

    /// Lanes (with why that is the most, shortened to fit), zero and skipped bytes.
    private func drawLanes(into grid: inout CellGrid, in line: Rect, theme: Theme) {
        let label = theme[.dim], value = theme[.normal]
        let zeroes = [TextRun("zero ", label), TextRun(Format.bytes(snapshot.bytesZeroed), value),
                      TextRun("  skipped ", label), TextRun(Format.bytes(snapshot.bytesSkipped), value)]
        var lanes = [TextRun("lanes ", label), TextRun("\(snapshot.lanes)/\(snapshot.maximumLanes)", value)]
        // Tuned lanes say so, and the tuner's last decision takes the place of the limit's reason.
        let tuning = snapshot.tuning.flatMap { $0.laneMode == .fixed && !$0.requestSizeIsAuto ? nil : $0 }
        if let tuning { lanes.append(TextRun(" " + tuning.laneMode.rawValue, value.adding(.bold))) }
        let reason = tuning?.lastDecision.map { "auto: " + $0 } ?? snapshot.laneLimitReason
        let reasonRoom = line.columns - 2 - lanes.width - zeroes.width - 2 - 3
        var runs = lanes
        if reasonRoom >= 8 {
            runs.append(TextRun(" (" + TextFitting.truncate(reason, to: reasonRoom, ellipsis: state.glyphs.ellipsis) + ")", label))
        }
        runs.append(TextRun("  ", label))
        grid.write(runs + zeroes, at: Position(row: line.row, column: line.column + 1), clip: line)
    }
}

/// Places segments left to right, two spaces apart, moving to the next row when one does
/// not fit; a segment wider than a whole row is cut.
enum FlowLayout {
    static func draw(_ segments: [[TextRun]], into grid: inout CellGrid, rows: [Rect], ellipsis: String) {
        var rowIndex = 0
        var column = 1
        for segment in segments {
            guard rowIndex < rows.count else { return }
            var line = rows[rowIndex]
            let available = line.columns - 2
            if column > 1, column + segment.width > line.right - 1 {
                rowIndex += 1
                column = 1
                guard rowIndex < rows.count else { return }
                line = rows[rowIndex]
            }
            let runs = segment.width > available ? segment.truncated(to: available, ellipsis: ellipsis) : segment
            column = grid.write(runs, at: Position(row: line.row, column: line.column + column), clip: line) - line.column + 2
        }
    }
}
