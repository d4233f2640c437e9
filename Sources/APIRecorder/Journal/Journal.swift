import DequeModule
public import Foundation
import Synchronization

/// How an exchange ended, as the journal and the metrics name it.
public enum JournalOutcome: String, Sendable, CaseIterable {
    case replayed
    case missed
    case recorded
    case passedThrough = "passed_through"
    case fault
    case error
}

/// One exchange the pipeline answered. Holds no secret: the path without its query, no headers,
/// no bodies.
public struct JournalEntry: Sendable, Equatable {
    /// When the exchange started.
    public var time: Date
    public var testID: String?
    /// `POST`, ..., or `TOOL` for a tool call.
    public var method: String
    /// The path under the route (`/chat/completions`), or a tool's `provider.name`.
    public var path: String
    /// The route it came through (`openai`), `nil` for tool calls and in-process hooks without one.
    public var route: String?
    /// The request hash, when the request was understood.
    public var hash: String?
    public var outcome: JournalOutcome
    /// The status the client got (0 for a tool call).
    public var status: Int
    /// From the request to the end of the answer (the last byte of a stream).
    public var durationMilliseconds: Double
    /// The fault applied, in its header form.
    public var fault: String?

    public var json: JSONValue {
        var object = JSONObject(minimumCapacity: 10)
        object["time"] = .string(Self.format(time))
        object["test_id"] = testID.map(JSONValue.string) ?? .null
        object["method"] = .string(method)
        object["path"] = .string(path)
        object["route"] = route.map(JSONValue.string) ?? .null
        object["hash"] = hash.map(JSONValue.string) ?? .null
        object["outcome"] = .string(outcome.rawValue)
        object["status"] = .integer(status)
        object["duration_ms"] = .float((durationMilliseconds * 1000).rounded() / 1000)
        object["fault"] = fault.map(JSONValue.string) ?? .null
        return .object(object)
    }

    /// Takes `other`'s copy of each string they have in common.
    fileprivate mutating func shareStrings(with other: JournalEntry) {
        if testID == other.testID { testID = other.testID }
        if method == other.method { method = other.method }
        if path == other.path { path = other.path }
        if route == other.route { route = other.route }
        if hash == other.hash { hash = other.hash }
    }

    private static func format(_ date: Date) -> String {
        date.formatted(
            .iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted)
        )
    }
}

/// The last exchanges, bounded (`--journal-size`): what the proxy did during a run.
public final class Journal: Sendable {
    public let capacity: Int
    private let entries = Mutex(Deque<JournalEntry>())

    public init(capacity: Int = 1000) {
        self.capacity = max(0, capacity)
    }

    package func append(_ entry: JournalEntry) {
        guard capacity > 0 else { return }
        var entry = entry
        entries.withLock { entries in
            // Strings equal to the last entry's share its copies, and this exchange's own are
            // freed now, by the thread that made them: kept for a thousand exchanges, they would
            // be freed later by another thread, which costs a busy proxy measurably.
            if let last = entries.last { entry.shareStrings(with: last) }
            if entries.count >= capacity { entries.removeFirst(entries.count - capacity + 1) }
            entries.append(entry)
        }
    }

    /// The entries, oldest first; with a test id, that test's only (`""` is requests with none).
    public func entries(testID: String?? = .none) -> [JournalEntry] {
        let all = entries.withLock { Array($0) }
        guard case .some(let wanted) = testID else { return all }
        return all.filter { $0.testID == wanted }
    }

    /// `{"entries": [...]}`.
    public func json(testID: String?? = .none) -> JSONValue {
        ["entries": .array(entries(testID: testID).map(\.json))]
    }

    public func clear() {
        entries.withLock { $0.removeAll() }
    }
}

extension Duration {
    /// The duration in milliseconds, with fractions.
    package var milliseconds: Double {
        Double(components.seconds) * 1000 + Double(components.attoseconds) / 1e15
    }
}
