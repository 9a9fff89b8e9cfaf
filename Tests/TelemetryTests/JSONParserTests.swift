import Testing
@testable import Telemetry

/// The parser that reads client commands and hellos: what it accepts, and that hostile
/// input is refused instead of crashing.
@Suite struct JSONParserTests {
    @Test func roundTripsWhatTheEncoderWrites() throws {
        let value = JSONValue.object([
            ("s", .string("a \"quoted\" \\ line\n\t\u{01} é 🚀")), ("i", .int(-42)), ("u", .uint(UInt64.max)),
            ("d", .double(1.5)), ("b", .bool(true)), ("n", .null), ("a", .array([.int(1), .array([])])), ("o", .object([])),
        ])
        #expect(try JSONValue.parse(value.compact) == value)
        #expect(try JSONValue.parse(value.pretty) == value)
    }

    @Test func readsEscapesAndNumbers() throws {
        #expect(try JSONValue.parse(#" "\u00e9\ud83d\ude80\/" "#) == .string("é🚀/"))
        #expect(try JSONValue.parse("1e3")["x"] == nil)
        #expect(try JSONValue.parse("1e3").int == 1000)
        #expect(try JSONValue.parse("-0.25").double == -0.25)
        #expect(try JSONValue.parse(#"{"id":3,"id":4}"#)["id"]?.int == 3)
    }

    @Test(arguments: ["", "{", "[1,]", "{\"a\"}", "01", "1.", "\"\\x\"", "\"\\ud800\"", "tru", "{} {}", "\"a\nb\"",
                      String(repeating: "[", count: 100_000)])
    func refusesMalformedInput(text: String) {
        #expect(throws: JSONParseError.self) { try JSONValue.parse(text) }
    }

    @Test func refusesDeepNestingButTakesTheLimit() throws {
        let depth = JSONValue.maximumDepth
        let ok = String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
        #expect(throws: Never.self) { try JSONValue.parse(ok) }
        let deep = "[" + ok + "]"
        #expect(throws: JSONParseError.self) { try JSONValue.parse(deep) }
    }
}
