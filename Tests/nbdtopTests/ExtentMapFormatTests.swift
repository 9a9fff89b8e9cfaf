import Testing
@testable import nbdtop

/// `info --map`'s coalescing and nbdinfo's formats, on extents made up here.
@Suite struct ExtentMapFormatTests {
    static func map() -> ExtentMap {
        var map = ExtentMap(exportSize: 10 << 20)
        map.append(length: 1 << 20, type: 0)
        map.append(length: 1 << 20, type: 0)
        map.append(length: 3 << 20, type: 3)
        map.append(length: 1 << 20, type: 0)
        map.append(length: 8 << 20, type: 3)  // past the end: cut there
        return map
    }

    @Test func adjacentRunsOfOneTypeMerge() {
        let map = Self.map()
        let mebibyte: UInt64 = 1 << 20
        let expected: [ExtentMap.Run] = [
            ExtentMap.Run(offset: 0, length: 2 * mebibyte, type: 0), ExtentMap.Run(offset: 2 * mebibyte, length: 3 * mebibyte, type: 3),
            ExtentMap.Run(offset: 5 * mebibyte, length: mebibyte, type: 0), ExtentMap.Run(offset: 6 * mebibyte, length: 4 * mebibyte, type: 3),
        ]
        #expect(map.runs == expected)
        #expect(map.end == 10 * mebibyte)
        let totals: [ExtentMap.Total] = [ExtentMap.Total(bytes: 3 * mebibyte, type: 0), ExtentMap.Total(bytes: 7 * mebibyte, type: 3)]
        #expect(map.totals == totals)
    }

    @Test func formatsAreNbdinfos() {
        let map = Self.map()
        #expect(map.text.hasPrefix("         0     2097152    0  data\n   2097152     3145728    3  hole,zero\n"))
        #expect(map.totalsText == "   3145728  30.0%   0 data\n   7340032  70.0%   3 hole,zero\n")
        #expect(map.json.hasPrefix("[\n{ \"offset\": 0, \"length\": 2097152, \"type\": 0, \"description\": \"data\"},\n"))
        #expect(map.totalsJSON.hasSuffix("{ \"size\": 7340032, \"percent\": 70, \"type\": 3, \"description\": \"hole,zero\" }\n]\n"))
        var odd = ExtentMap(exportSize: 3)
        odd.append(length: 3, type: 4)
        #expect(odd.text == "         0           3    4\n", "no words for bits nbdinfo does not name")
    }
}
