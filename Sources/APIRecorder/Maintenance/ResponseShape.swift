/// The shape of an answer, what `api-recorder drift` compares between a recording and the live
/// upstream: the status, for each JSON path the kinds of value seen there (the items of a list
/// merged, as `choices[]`), and for a stream the types of its events in order.
///
/// Values are left out on purpose: a model's words change on every call, its shape should not.
/// `null` goes with any kind (an absent refusal and a refusal are one shape), integers and floats
/// are both numbers, and a run of events of one type counts once.
public struct ResponseShape: Sendable, Equatable {
    public enum Kind: String, Sendable, Comparable {
        case object, array, string, number, boolean, null

        public static func < (lhs: Kind, rhs: Kind) -> Bool { lhs.rawValue < rhs.rawValue }
    }

    public var status: Int
    /// The kinds of value at each path (`""` is the whole body; a stream's events are `[]`).
    public var kinds: [String: Set<Kind>]
    /// A stream's event types in order, runs collapsed; `nil` for a whole body.
    public var eventTypes: [String]?

    /// The shape of a whole body.
    public init(status: Int, body: JSONValue) {
        self.status = status
        kinds = [:]
        eventTypes = nil
        add(body, at: "")
    }

    /// The shape of a stream of events (each a JSON value; `type`, else `object`, names it).
    public init(status: Int, events: [JSONValue]) {
        self.status = status
        kinds = [:]
        var types: [String] = []
        for event in events {
            add(event, at: "[]")
            let type = event["type"]?.stringValue ?? event["object"]?.stringValue ?? "event"
            if types.last != type { types.append(type) }
        }
        eventTypes = types
    }

    private mutating func add(_ value: JSONValue, at path: String) {
        switch value {
        case .null: kinds[path, default: []].insert(.null)
        case .bool: kinds[path, default: []].insert(.boolean)
        case .integer, .bigInteger, .float: kinds[path, default: []].insert(.number)
        case .string: kinds[path, default: []].insert(.string)
        case .array(let items):
            kinds[path, default: []].insert(.array)
            for item in items { add(item, at: path + "[]") }
        case .object(let object):
            kinds[path, default: []].insert(.object)
            for (key, member) in object.members { add(member, at: path.isEmpty ? key : path + "." + key) }
        }
    }

    /// What changed from `recorded` to `self` (the live answer).
    public func drift(from recorded: ResponseShape) -> ShapeDrift {
        var drift = ShapeDrift()
        if status != recorded.status { drift.status = (recorded.status, status) }
        // Only the top of a new or vanished subtree: `usage`, not every path under it.
        func topmost(_ paths: Set<String>) -> [String] {
            paths.filter { path in
                !paths.contains { other in
                    other != path && (path.hasPrefix(other + ".") || path.hasPrefix(other + "[]"))
                }
            }
            .sorted()
        }
        let recordedPaths = Set(recorded.kinds.keys)
        let livePaths = Set(kinds.keys)
        drift.added = topmost(livePaths.subtracting(recordedPaths))
        drift.removed = topmost(recordedPaths.subtracting(livePaths))
        for path in recordedPaths.intersection(livePaths).sorted() {
            let before = recorded.kinds[path, default: []].subtracting([.null])
            let after = kinds[path, default: []].subtracting([.null])
            if !before.isEmpty, !after.isEmpty, before != after {
                drift.changed.append((path, before.sorted(), after.sorted()))
            }
        }
        if recorded.eventTypes != eventTypes { drift.events = (recorded.eventTypes ?? [], eventTypes ?? []) }
        return drift
    }
}

/// How a live answer's shape differs from its recording's.
public struct ShapeDrift: Sendable {
    public var status: (recorded: Int, live: Int)?
    /// Paths the live answer has and the recording has not.
    public var added: [String] = []
    /// Paths the recording has and the live answer has not.
    public var removed: [String] = []
    /// Paths whose kinds of value changed.
    public var changed: [(path: String, recorded: [ResponseShape.Kind], live: [ResponseShape.Kind])] = []
    /// A stream's event types, when they changed.
    public var events: (recorded: [String], live: [String])?

    public var isEmpty: Bool {
        status == nil && added.isEmpty && removed.isEmpty && changed.isEmpty && events == nil
    }

    /// `status 200 -> 500; added usage.cost; removed choices[].logprobs; ...`.
    public var description: String {
        func name(_ path: String) -> String { path.isEmpty ? "(the body)" : path }
        var parts: [String] = []
        if let status { parts.append("status \(status.recorded) -> \(status.live)") }
        if !added.isEmpty { parts.append("added " + added.map(name).joined(separator: ", ")) }
        if !removed.isEmpty { parts.append("removed " + removed.map(name).joined(separator: ", ")) }
        for change in changed {
            let before = change.recorded.map(\.rawValue).joined(separator: "|")
            let after = change.live.map(\.rawValue).joined(separator: "|")
            parts.append("\(name(change.path)) changed from \(before) to \(after)")
        }
        if let events {
            parts.append(
                "events changed from \(events.recorded.joined(separator: ", ")) to \(events.live.joined(separator: ", "))"
            )
        }
        return parts.joined(separator: "; ")
    }
}

extension ResponseShape {
    /// The events of a server-sent-event text (or a recording's list of its lines): each `data:`
    /// payload as JSON (`[DONE]` and payloads that are not JSON left out), with the `event:` name
    /// as its `type` when the payload has none.
    public static func serverSentEvents(lines: [String]) -> [JSONValue] {
        var events: [JSONValue] = []
        var name: String?
        var data: [String] = []
        func flush() {
            defer {
                name = nil
                data = []
            }
            guard !data.isEmpty else { return }
            let payload = data.joined(separator: "\n")
            guard payload != "[DONE]", var value = try? JSONValue(parsing: payload) else { return }
            if case .object(var object) = value, object["type"] == nil, let name {
                object["type"] = .string(name)
                value = .object(object)
            }
            events.append(value)
        }
        for raw in lines {
            let line = raw.hasSuffix("\r") ? String(raw.dropLast()) : raw
            if line.isEmpty {
                flush()
            } else if line.hasPrefix("data:") {
                data.append(String(line.dropFirst(5).drop { $0 == " " }))
            } else if line.hasPrefix("event:") {
                name = String(line.dropFirst(6).drop { $0 == " " })
            }
        }
        flush()
        return events
    }

    /// The events of NDJSON text: one JSON value per non-empty line.
    public static func lines(_ text: String) -> [JSONValue] {
        text.split(separator: "\n").compactMap { try? JSONValue(parsing: String($0)) }
    }
}
