/// Which lines of a list show in a fixed number of rows, keeping the selected line in view.
/// When the list is longer than the rows, one row at the top (if lines are hidden above)
/// and one at the bottom (if hidden below) say how many more there are.
struct ScrollWindow: Equatable {
    /// First shown line and how many are shown.
    var first: Int
    var count: Int
    var hiddenAbove: Int { first }
    let hiddenBelow: Int

    init(lineCount: Int, visibleRows: Int, selectedLine: Int?) {
        let rows = max(0, visibleRows)
        guard lineCount > rows else {
            first = 0
            count = lineCount
            hiddenBelow = 0
            return
        }
        // Try without a top indicator first (selection near the top), then with both.
        let withoutTop = max(0, rows - 1)
        if (selectedLine ?? 0) < withoutTop {
            first = 0
            count = withoutTop
            hiddenBelow = lineCount - withoutTop
            return
        }
        let selected = selectedLine ?? 0
        let lastPossibleFirst = lineCount - max(0, rows - 1)
        if selected >= lastPossibleFirst {
            // Near the end: only the top indicator is needed.
            first = lastPossibleFirst
            count = max(0, rows - 1)
            hiddenBelow = 0
            return
        }
        let middle = max(1, rows - 2)
        first = max(1, selected - middle + 1)
        count = middle
        hiddenBelow = lineCount - first - middle
    }
}
