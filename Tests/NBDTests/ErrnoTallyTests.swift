import NBD
import Testing

/// Errors are counted under a bounded set of names: a server cannot grow a tally (or the
/// metrics' label sets) by sending ever new error numbers.
@Suite struct ErrnoTallyTests {
    @Test func knownValuesKeepTheirNameAndUnknownOnesShareOne() {
        #expect(NBDErrno.eio.tallyName == "EIO")
        #expect(NBDErrno.enospc.tallyName == "ENOSPC")
        let unknown = Set((1000..<1100).map { NBDErrno(rawValue: UInt32($0)).tallyName })
        #expect(unknown == ["other"])
        #expect(NBDErrno(rawValue: 4242).name == "error 4242", "messages still name the value")
    }
}
