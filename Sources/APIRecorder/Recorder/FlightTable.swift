import Synchronization

/// How a leading request's exchange ended, as the identical requests waiting on it learn it.
package enum FlightResult: Sendable {
    /// It recorded (or had nothing to record): look the recording up again.
    case succeeded
    /// It failed without a recording: answer with the same failure, at once.
    case failed(any Error & Sendable)
}

/// Requests in flight, by hash, and who waits for them.
final class FlightTable: Sendable {
    /// What ``enter(_:)`` gives a request.
    enum Entry: Sendable {
        /// No identical request is in flight: forward it, then end the lease.
        case lead(FlightLease)
        /// An identical request was in flight and has ended so.
        case followed(FlightResult)
    }

    private let waiting = Mutex<[String: [CheckedContinuation<FlightResult, Never>]]>([:])

    /// Leads when no identical request is in flight; otherwise waits until the leader ends.
    func enter(_ key: String) async -> Entry {
        var leads = false
        let result = await withCheckedContinuation { (continuation: CheckedContinuation<FlightResult, Never>) in
            let isFirst = waiting.withLock { table in
                if table[key] == nil {
                    table[key] = []
                    return true
                }
                table[key]!.append(continuation)
                return false
            }
            if isFirst {
                leads = true
                continuation.resume(returning: .succeeded)
            }
        }
        return leads ? .lead(FlightLease(table: self, key: key)) : .followed(result)
    }

    /// Ends the flight of `key`: every waiter learns `result` at the same moment.
    fileprivate func leave(_ key: String, _ result: FlightResult) {
        let waiters = waiting.withLock { $0.removeValue(forKey: key) } ?? []
        for waiter in waiters { waiter.resume(returning: result) }
    }
}

/// The right to forward one request while identical ones wait. Ended exactly once: by
/// ``succeed()`` or ``fail(_:)``, or, if it is dropped unended (an exchange abandoned on any
/// path), when it is released, so waiters can never hang on it.
package final class FlightLease: Sendable {
    private let table: FlightTable
    private let key: String
    private let ended = Atomic<Bool>(false)

    fileprivate init(table: FlightTable, key: String) {
        self.table = table
        self.key = key
    }

    /// The exchange recorded (or had nothing to record): waiters look again.
    package func succeed() { end(.succeeded) }

    /// The exchange failed without a recording: waiters answer with `error`.
    package func fail(_ error: any Error & Sendable) { end(.failed(error)) }

    private func end(_ result: FlightResult) {
        if ended.exchange(true, ordering: .acquiringAndReleasing) { return }
        table.leave(key, result)
    }

    deinit {
        end(.succeeded)
    }
}
