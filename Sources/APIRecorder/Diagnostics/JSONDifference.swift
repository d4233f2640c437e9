public import PythonJSON

/// One place where a recorded request and a requested one differ, by JSON path.
public struct JSONDifference: Sendable, Equatable {
    /// The path over the request body, in `a.b[0].c` spelling (`["odd key"]` for keys that are
    /// not identifiers); empty for the whole value.
    public var path: String
    /// The recorded value; `nil` when the recorded request has nothing there.
    public var recorded: JSONValue?
    /// The requested value; `nil` when the request has nothing there.
    public var requested: JSONValue?

    public init(path: String, recorded: JSONValue?, requested: JSONValue?) {
        self.path = path
        self.recorded = recorded
        self.requested = requested
    }

    /// The structural differences between two values: leaves that differ, members and elements
    /// that only one side has. Lists are compared element by element.
    /// - Parameter limit: stop after this many (the count then says only that there are more).
    /// - Returns: the differences found (at most `limit`) and whether there were more.
    public static func between(
        recorded: JSONValue,
        requested: JSONValue,
        limit: Int = .max
    ) -> (differences: [JSONDifference], truncated: Bool) {
        var collector = Collector(limit: limit)
        collector.compare(recorded, requested, path: "")
        return (collector.differences, collector.truncated)
    }

    private struct Collector {
        let limit: Int
        var differences: [JSONDifference] = []
        var truncated = false

        mutating func add(_ path: String, _ recorded: JSONValue?, _ requested: JSONValue?) {
            guard differences.count < limit else {
                truncated = true
                return
            }
            differences.append(JSONDifference(path: path, recorded: recorded, requested: requested))
        }

        mutating func compare(_ recorded: JSONValue, _ requested: JSONValue, path: String) {
            guard !truncated else { return }
            switch (recorded, requested) {
            case (.object(let left), .object(let right)):
                for (key, value) in left.members {
                    if let other = right[key] {
                        compare(value, other, path: JSONDifference.path(path, key: key))
                    } else {
                        add(JSONDifference.path(path, key: key), value, nil)
                    }
                }
                for (key, value) in right.members where left.index(of: key) == nil {
                    add(JSONDifference.path(path, key: key), nil, value)
                }
            case (.array(let left), .array(let right)):
                for index in 0..<max(left.count, right.count) {
                    let itemPath = path + "[\(index)]"
                    switch (index < left.count, index < right.count) {
                    case (true, true): compare(left[index], right[index], path: itemPath)
                    case (true, false): add(itemPath, left[index], nil)
                    default: add(itemPath, nil, right[index])
                    }
                }
            default:
                if recorded != requested { add(path, recorded, requested) }
            }
        }
    }

    /// `path` extended by an object key.
    static func path(_ path: String, key: String) -> String {
        let isIdentifier =
            !key.isEmpty
            && key.utf8.allSatisfy { byte in
                (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
                    || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                    || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "_")
                    || byte == UInt8(ascii: "-")
            } && key.utf8.first.map { !(UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) } == true
        if isIdentifier { return path.isEmpty ? key : path + "." + key }
        return path + "[" + String(decoding: JSONValue.string(key).compactBytes(), as: UTF8.self) + "]"
    }

    /// A value cut down for a message: long strings keep their start and end, large lists and
    /// objects their size.
    public static func shortened(_ value: JSONValue) -> JSONValue {
        switch value {
        case .string(let text) where text.count > 160:
            return .string("\(text.prefix(100))…\(text.suffix(40)) (\(text.count) characters)")
        case .float(let number) where !number.isFinite:
            // A request's NaN or infinity, quoted in an error body: strict JSON has no literal for it.
            return .string(number.isNaN ? "NaN" : number < 0 ? "-Infinity" : "Infinity")
        case .array(let items):
            let short = JSONValue.array(items.prefix(8).map(shortened))
            if items.count > 8 || short.compactBytes().count > 600 {
                return .string("[a list of \(items.count) items]")
            }
            return short
        case .object(let object):
            var short = JSONObject()
            for (key, member) in object.members { short[key] = shortened(member) }
            if object.count > 12 || JSONValue.object(short).compactBytes().count > 600 {
                return .string("{an object of \(object.count) keys}")
            }
            return .object(short)
        default:
            return value
        }
    }
}
