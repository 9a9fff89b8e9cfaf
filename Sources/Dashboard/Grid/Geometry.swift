/// The size of the terminal, in character cells.
public struct TerminalSize: Sendable, Equatable, CustomStringConvertible {
    public var columns: Int
    public var rows: Int

    public init(columns: Int, rows: Int) {
        self.columns = max(0, columns)
        self.rows = max(0, rows)
    }

    /// `80×24`.
    public var description: String { "\(columns)×\(rows)" }
}

/// A cell position: row from the top, column from the left, both from 0.
public struct Position: Sendable, Hashable {
    public var row: Int
    public var column: Int

    public init(row: Int, column: Int) {
        self.row = row
        self.column = column
    }
}

/// A rectangle of cells.
public struct Rect: Sendable, Equatable {
    public var row: Int
    public var column: Int
    public var columns: Int
    public var rows: Int

    public init(row: Int, column: Int, columns: Int, rows: Int) {
        self.row = row
        self.column = column
        self.columns = max(0, columns)
        self.rows = max(0, rows)
    }

    /// The row just below the rectangle.
    public var bottom: Int { row + rows }
    /// The column just right of the rectangle.
    public var right: Int { column + columns }
    public var isEmpty: Bool { columns == 0 || rows == 0 }

    /// The part of this rectangle that lies inside `other`.
    public func intersection(_ other: Rect) -> Rect {
        let top = max(row, other.row), left = max(column, other.column)
        let bottomEdge = min(bottom, other.bottom), rightEdge = min(right, other.right)
        return Rect(row: top, column: left, columns: rightEdge - left, rows: bottomEdge - top)
    }

    /// One row of this rectangle, `offset` rows from its top.
    public func line(_ offset: Int) -> Rect {
        Rect(row: row + offset, column: column, columns: columns, rows: offset >= 0 && offset < rows ? 1 : 0)
    }
}
