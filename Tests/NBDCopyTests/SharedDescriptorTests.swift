import Dispatch
@testable import NBDCopy
import Testing

/// A descriptor shared by requests on the thread pool: closing it waits for the request
/// that still runs, so that nothing lands on the file after an exit cuts it.
@Suite struct SharedDescriptorTests {
    static func closedError() -> EndpointError { EndpointError(.connection, "closed") }

    /// With a user inside `use`, `closeAndWait` times out; once that user leaves it
    /// succeeds, and no new user is admitted after the close.
    @Test func closeAndWaitWaitsForTheRunningUser() throws {
        let descriptor = SharedDescriptor(-1, ownsDescriptor: false)
        let entered = DispatchSemaphore(value: 0), leave = DispatchSemaphore(value: 0), left = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            _ = try? descriptor.use(closedError: Self.closedError) { _ in
                entered.signal()
                leave.wait()
            }
            left.signal()
        }
        entered.wait()
        let whileRunning = descriptor.closeAndWait(timeout: .milliseconds(50))
        #expect(!whileRunning, "returned while a user was still inside use")
        #expect(descriptor.isClosed)
        #expect(throws: EndpointError.self) { try descriptor.use(closedError: Self.closedError) { _ in } }
        leave.signal()
        left.wait()
        let afterwards = descriptor.closeAndWait(timeout: .seconds(10))
        #expect(afterwards)
    }

    /// Nobody inside: it returns at once, and twice in a row.
    @Test func closeAndWaitWithoutUsersReturnsAtOnce() {
        let descriptor = SharedDescriptor(-1, ownsDescriptor: false)
        let first = descriptor.closeAndWait(timeout: .zero)
        let second = descriptor.closeAndWait(timeout: .zero)
        #expect(first && second)
    }
}
