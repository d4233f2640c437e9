import Synchronization

/// The faults set for test ids (`POST /__recorder/faults`, `.recording(faults:)`, the pytest
/// marker), taken by the requests of each test in order: a fault with `times` applies to that many
/// requests, then the next one in the list does, and so on.
public final class FaultTable: Sendable {
    private let table = Mutex<[String: [Fault]]>([:])
    /// How many test ids have faults: every exchange asks, and almost always there are none.
    private let count = Atomic<Int>(0)

    public init() {}

    /// Sets (replacing any) the faults of `testID`; `nil` is requests with no test id.
    public func set(_ faults: [Fault], for testID: String?) {
        table.withLock { table in
            table[testID ?? ""] = faults.isEmpty ? nil : faults
            count.store(table.count, ordering: .releasing)
        }
    }

    /// Clears the faults of `testID`, or of every test id.
    public func clear(testID: String?? = .none) {
        table.withLock { table in
            switch testID {
            case .none: table.removeAll()
            case .some(let id): table[id ?? ""] = nil
            }
            count.store(table.count, ordering: .releasing)
        }
    }

    /// The faults still to apply for `testID`.
    public func faults(for testID: String?) -> [Fault] {
        table.withLock { $0[testID ?? ""] ?? [] }
    }

    /// The fault for the next request of `testID`, counted against its `times`.
    package func take(for testID: String?) -> Fault? {
        // Most exchanges run with no faults set: one atomic load.
        guard count.load(ordering: .acquiring) > 0 else { return nil }
        return table.withLock { table -> Fault? in
            guard var faults = table[testID ?? ""], let first = faults.first else { return nil }
            if let times = first.times {
                if times <= 1 {
                    faults.removeFirst()
                } else {
                    faults[0].times = times - 1
                }
                table[testID ?? ""] = faults.isEmpty ? nil : faults
                count.store(table.count, ordering: .releasing)
            }
            return first
        }
    }
}
