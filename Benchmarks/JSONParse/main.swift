// The control protocol's hand-written JSON parser against FoundationEssentials'
// JSONDecoder (already linked into nbdtop), decoding the same `sample` line of 16
// connections into a generic JSON value. Built and run by Benchmarks/json-parse.sh.
import FoundationEssentials


enum AnyJSON: Decodable {
    case null, bool(Bool), int(Int64), uint(UInt64), double(Double), string(String), array([AnyJSON]), object([String: AnyJSON])
    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let i = try? c.decode(Int64.self) { self = .int(i) }
        else if let u = try? c.decode(UInt64.self) { self = .uint(u) }
        else if let d = try? c.decode(Double.self) { self = .double(d) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([AnyJSON].self) { self = .array(a) }
        else { self = .object(try c.decode([String: AnyJSON].self)) }
    }
}
@main struct M { static func main() throws {
var conns: [String] = []
for i in 0..<16 {
    conns.append(#"{"id":\#(i),"side":"src","state":"active","bytes":123456789012,"rate_bps":52428800.5,"inflight":8,"inflight_bytes":16777216,"lat_p50_ms":1.234,"lat_p99_ms":9.876,"stalled":false,"stalls":0,"errors":0}"#)
}
let line = #"{"v":1,"event":"sample","t":12.345,"bytes_done":1073741824,"bytes_total":2199023255552,"bytes_zero":0,"rate_bps":523456789.0,"lanes":8,"paused":false,"conns":[\#(conns.joined(separator: ","))]}"#
let bytes = Array(line.utf8)
let data = Data(line.utf8)
let rounds = 20_000
let clock = ContinuousClock()
var sink = 0
let a = clock.measure { for _ in 0..<rounds { if case .object(let m) = try! JSONValue.parse(bytes) { sink &+= m.count } } }
let decoder = JSONDecoder()
let b = clock.measure { for _ in 0..<rounds { if case .object(let m) = try! decoder.decode(AnyJSON.self, from: data) { sink &+= m.count } } }
let ratio = Double(b / .nanoseconds(1)) / Double(a / .nanoseconds(1))
print("line \(bytes.count) bytes, \(rounds) rounds; hand-written: \(a / rounds) per line; JSONDecoder: \(b / rounds) per line; JSONDecoder takes \((ratio * 10).rounded() / 10)× as long (sink \(sink))")
}}
