/// A JSON value with the data model of Python's `json` module.
///
/// Recordings are shared byte for byte with a Python tool, so the value keeps what Python keeps:
/// integers of any size exactly (``bigInteger(_:)`` beyond `Int`), floats as `Double`
/// (`-0` is the integer 0, `-0.0` stays a float), and object keys in their original order.
/// Strings and keys compare by Unicode scalars, as Python does, not by canonical equivalence.
///
/// ```swift
/// let value = try JSONValue(parsing: Array(#"{"b": 1.0, "a": [1e-05, 12345678901234567890]}"#.utf8))
/// String(decoding: value.canonicalBytes(), as: UTF8.self)
/// // {"a": [1e-05, 12345678901234567890], "b": 1.0}
/// ```
public enum JSONValue: Sendable {
    case null
    case bool(Bool)
    /// An integer that fits in `Int`.
    case integer(Int)
    /// An integer beyond `Int`, as its decimal text: an optional `-` and digits, no leading zeros.
    case bigInteger(String)
    /// A float: any JSON number written with a fraction or an exponent, and NaN or ±Infinity.
    case float(Double)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)
}

extension JSONValue {
    /// The string payload, or `nil`.
    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    /// The object payload, or `nil`.
    public var objectValue: JSONObject? {
        if case .object(let value) = self { return value }
        return nil
    }

    /// The array payload, or `nil`.
    public var arrayValue: [JSONValue]? {
        if case .array(let value) = self { return value }
        return nil
    }

    /// The integer payload, or `nil` (also for big integers).
    public var intValue: Int? {
        if case .integer(let value) = self { return value }
        return nil
    }

    /// The boolean payload, or `nil`.
    public var boolValue: Bool? {
        if case .bool(let value) = self { return value }
        return nil
    }

    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// The member `key` of an object, or `nil` when this is not an object or has no such key.
    public subscript(key: String) -> JSONValue? {
        objectValue?[key]
    }
}

extension JSONValue: Equatable {
    /// Structural equality in Python's sense for the JSON types, with two differences that keep
    /// files exact: `1` and `1.0` differ, and objects compare their keys in order.
    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): return true
        case (.bool(let a), .bool(let b)): return a == b
        case (.integer(let a), .integer(let b)): return a == b
        case (.bigInteger(let a), .bigInteger(let b)): return a == b
        case (.float(let a), .float(let b)): return a.bitPattern == b.bitPattern || a == b
        case (.string(let a), .string(let b)): return a.utf8.elementsEqual(b.utf8)
        case (.array(let a), .array(let b)): return a == b
        case (.object(let a), .object(let b)): return a == b
        default: return false
        }
    }
}

extension JSONValue: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByArrayLiteral,
    ExpressibleByDictionaryLiteral
{
    public init(nilLiteral: ()) { self = .null }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int) { self = .integer(value) }
    public init(floatLiteral value: Double) { self = .float(value) }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        var object = JSONObject()
        for (key, value) in elements { object[key] = value }
        self = .object(object)
    }
}

/// A JSON object that keeps its keys in insertion order, like a Python `dict`.
///
/// Keys are compared by their Unicode scalars (Python's rule), so `"é"` and `"e\u{301}"` are two
/// keys, though Swift's `String ==` calls them equal. Look-ups are linear, which is the fastest
/// choice for the small objects that API payloads are made of.
public struct JSONObject: Sendable, Equatable {
    public private(set) var keys: [String]
    public private(set) var values: [JSONValue]

    public init() {
        keys = []
        values = []
    }

    public init(minimumCapacity: Int) {
        keys = []
        values = []
        keys.reserveCapacity(minimumCapacity)
        values.reserveCapacity(minimumCapacity)
    }

    public var count: Int { keys.count }
    public var isEmpty: Bool { keys.isEmpty }

    /// The members in order.
    public var members: Zip2Sequence<[String], [JSONValue]> { zip(keys, values) }

    /// The position of `key`, compared by Unicode scalars (for UTF-8, byte for byte).
    public func index(of key: String) -> Int? {
        withUTF8Buffer(key) { wanted in
            keys.withUnsafeBufferPointer { keys in
                for index in keys.indices where keys[index].utf8.count == wanted.count {
                    if withUTF8Buffer(keys[index], { $0.elementsEqual(wanted) }) { return index }
                }
                return nil
            }
        }
    }

    /// Gets a member; setting replaces the value in place (keeping the key's position, as a
    /// Python dict does) or appends a new key; setting `nil` removes the key.
    public subscript(key: String) -> JSONValue? {
        get {
            guard let index = index(of: key) else { return nil }
            return values[index]
        }
        set {
            if let index = index(of: key) {
                if let newValue {
                    values[index] = newValue
                } else {
                    keys.remove(at: index)
                    values.remove(at: index)
                }
            } else if let newValue {
                keys.append(key)
                values.append(newValue)
            }
        }
    }

    /// Removes `key` and returns its value, if present.
    @discardableResult
    public mutating func removeValue(forKey key: String) -> JSONValue? {
        guard let index = index(of: key) else { return nil }
        keys.remove(at: index)
        return values.remove(at: index)
    }

    /// Appends a member without checking for an existing key. For builders that know the key is new.
    public mutating func appendUnchecked(key: String, value: JSONValue) {
        keys.append(key)
        values.append(value)
    }

    /// Replaces the value at `index`.
    public mutating func setValue(_ value: JSONValue, at index: Int) {
        values[index] = value
    }

    /// Returns a copy whose values are transformed, keys unchanged.
    public func mapValues(_ transform: (JSONValue) throws -> JSONValue) rethrows -> JSONObject {
        var copy = self
        for index in copy.values.indices {
            copy.values[index] = try transform(copy.values[index])
        }
        return copy
    }

    public static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
        guard lhs.keys.count == rhs.keys.count else { return false }
        for index in lhs.keys.indices {
            guard lhs.keys[index].utf8.elementsEqual(rhs.keys[index].utf8),
                lhs.values[index] == rhs.values[index]
            else { return false }
        }
        return true
    }
}

extension JSONObject: ExpressibleByDictionaryLiteral {
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self.init(minimumCapacity: elements.count)
        for (key, value) in elements { self[key] = value }
    }
}
