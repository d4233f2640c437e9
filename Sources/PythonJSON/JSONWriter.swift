#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes JSON text byte-identical to Python's `json.dumps` with the matching options.
///
/// Two configurations matter for recordings: ``canonical`` (what the request hash is computed over)
/// and ``file`` (what a recording file holds). ``compact`` is for bodies sent over HTTP.
public struct JSONWriter: Sendable {
    /// Sort object keys by code point (`sort_keys=True`).
    public var sortKeys: Bool
    /// Indent width for pretty output (`indent=N`); `nil` writes one line.
    public var indent: Int?
    /// Text between array elements and object members.
    public var itemSeparator: String { didSet { itemBytes = Separator(itemSeparator) } }
    /// Text between a key and its value.
    public var keySeparator: String { didSet { keyBytes = Separator(keySeparator) } }
    /// The separators' bytes, encoded once (not on every write).
    private var itemBytes: Separator
    private var keyBytes: Separator
    /// Escape every non-ASCII character as `\uXXXX` (`ensure_ascii=True`).
    public var ensureASCII: Bool

    public init(sortKeys: Bool, indent: Int?, itemSeparator: String, keySeparator: String, ensureASCII: Bool = true) {
        self.sortKeys = sortKeys
        self.indent = indent
        self.itemSeparator = itemSeparator
        self.keySeparator = keySeparator
        itemBytes = Separator(itemSeparator)
        keyBytes = Separator(keySeparator)
        self.ensureASCII = ensureASCII
    }

    /// `json.dumps(obj, sort_keys=True)`: the text the request hash is computed over.
    public static let canonical = JSONWriter(sortKeys: true, indent: nil, itemSeparator: ", ", keySeparator: ": ")
    /// `json.dump(obj, f, indent=2)`: a recording file's text (``JSONValue/fileBytes()`` adds the newline).
    public static let file = JSONWriter(sortKeys: false, indent: 2, itemSeparator: ",", keySeparator: ": ")
    /// `json.dumps(obj, separators=(",", ":"), ensure_ascii=False)`: small bodies for HTTP.
    public static let compact = JSONWriter(
        sortKeys: false,
        indent: nil,
        itemSeparator: ",",
        keySeparator: ":",
        ensureASCII: false
    )

    /// Writes `value` and returns the bytes.
    public func write(_ value: JSONValue) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(256)
        write(value, into: &output)
        return output
    }

    /// Appends the text of `value` to `output`.
    public func write(_ value: JSONValue, into output: inout [UInt8]) {
        var emitter = Emitter(writer: self, output: [])
        swap(&emitter.output, &output)
        emitter.value(value, level: 0)
        swap(&emitter.output, &output)
    }

    /// A separator's bytes. The usual ones (`", "`, `": "`, `","`, `":"`) are kept inline, so
    /// that writing one costs no reference counting.
    private enum Separator: Sendable {
        case short(UInt8, UInt8?)
        case long([UInt8])

        init(_ text: String) {
            let bytes = Array(text.utf8)
            switch bytes.count {
            case 1: self = .short(bytes[0], nil)
            case 2: self = .short(bytes[0], bytes[1])
            default: self = .long(bytes)
            }
        }
    }

    /// The accumulating state of one write.
    private struct Emitter {
        let sortKeys: Bool
        let indent: Int?
        let itemSeparator: Separator
        let keySeparator: Separator
        let ensureASCII: Bool
        var output: [UInt8]

        init(writer: JSONWriter, output: [UInt8]) {
            sortKeys = writer.sortKeys
            indent = writer.indent
            itemSeparator = writer.itemBytes
            keySeparator = writer.keyBytes
            ensureASCII = writer.ensureASCII
            self.output = output
        }

        @inline(__always)
        private mutating func append(_ separator: Separator) {
            switch separator {
            case .short(let first, let second):
                output.append(first)
                if let second { output.append(second) }
            case .long(let bytes):
                output.append(contentsOf: bytes)
            }
        }

        // The containers are walked through their buffers, so that elements are borrowed, not
        // copied: a tree walk otherwise retains and releases every node it passes.
        mutating func value(_ value: JSONValue, level: Int) {
            switch value {
            case .null: output.append(contentsOf: "null".utf8)
            case .bool(let flag): output.append(contentsOf: (flag ? "true" : "false").utf8)
            case .integer(let number): appendInteger(number)
            case .bigInteger(let digits): output.append(contentsOf: digits.utf8)
            case .float(let number): PythonFloat.appendRepr(number, to: &output)
            case .string(let text): string(text)
            case .array(let elements):
                if elements.isEmpty {
                    output.append(contentsOf: "[]".utf8)
                    return
                }
                output.append(UInt8(ascii: "["))
                elements.withUnsafeBufferPointer { elements in
                    for index in elements.indices {
                        if index > 0 { append(itemSeparator) }
                        newline(level: level + 1)
                        self.value(elements[index], level: level + 1)
                    }
                }
                newline(level: level)
                output.append(UInt8(ascii: "]"))
            case .object(let object):
                if object.isEmpty {
                    output.append(contentsOf: "{}".utf8)
                    return
                }
                output.append(UInt8(ascii: "{"))
                object.keys.withUnsafeBufferPointer { keys in
                    object.values.withUnsafeBufferPointer { values in
                        if sortKeys, keys.count > 1 {
                            withSortedIndices(keys) { order in
                                for position in order.indices {
                                    member(position, key: keys[order[position]], value: values[order[position]], level)
                                }
                            }
                        } else {
                            for index in keys.indices { member(index, key: keys[index], value: values[index], level) }
                        }
                    }
                }
                newline(level: level)
                output.append(UInt8(ascii: "}"))
            }
        }

        @inline(__always)
        private mutating func member(_ position: Int, key: String, value: JSONValue, _ level: Int) {
            if position > 0 { append(itemSeparator) }
            newline(level: level + 1)
            string(key)
            append(keySeparator)
            self.value(value, level: level + 1)
        }

        private mutating func newline(level: Int) {
            guard let indent else { return }
            output.append(UInt8(ascii: "\n"))
            for _ in 0..<(indent * level) { output.append(UInt8(ascii: " ")) }
        }

        private mutating func appendInteger(_ number: Int) {
            if number >= 0 && number < 10 {
                output.append(UInt8(ascii: "0") + UInt8(number))
            } else {
                output.append(contentsOf: String(number).utf8)
            }
        }

        private mutating func string(_ text: String) {
            output.append(UInt8(ascii: "\""))
            withUTF8Buffer(text) { utf8 in
                var index = 0
                var runStart = 0
                while index < utf8.count {
                    let byte = utf8[index]
                    // Python's ensure_ascii escapes everything outside ' '...'~' (DEL included).
                    if byte >= 0x20 && byte != 0x22 && byte != 0x5C && byte < 0x7F {
                        index += 1
                        continue
                    }
                    if byte >= 0x7F && !ensureASCII {
                        index += 1
                        continue
                    }
                    output.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<index]))
                    if byte < 0x80 {
                        escapeASCII(byte)
                        index += 1
                    } else {
                        let (scalar, length) = decodeScalar(utf8, at: index)
                        if scalar >= 0x10000 {
                            let offset = scalar - 0x10000
                            hexEscape(0xD800 + (offset >> 10))
                            hexEscape(0xDC00 + (offset & 0x3FF))
                        } else {
                            hexEscape(scalar)
                        }
                        index += length
                    }
                    runStart = index
                }
                output.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<utf8.count]))
            }
            output.append(UInt8(ascii: "\""))
        }

        private mutating func escapeASCII(_ byte: UInt8) {
            switch byte {
            case 0x22: output.append(contentsOf: #"\""#.utf8)
            case 0x5C: output.append(contentsOf: #"\\"#.utf8)
            case 0x0A: output.append(contentsOf: #"\n"#.utf8)
            case 0x0D: output.append(contentsOf: #"\r"#.utf8)
            case 0x09: output.append(contentsOf: #"\t"#.utf8)
            case 0x08: output.append(contentsOf: #"\b"#.utf8)
            case 0x0C: output.append(contentsOf: #"\f"#.utf8)
            default: hexEscape(UInt32(byte))
            }
        }

        private mutating func hexEscape(_ unit: UInt32) {
            output.append(contentsOf: #"\u"#.utf8)
            output.append(hexDigit(unit >> 12))
            output.append(hexDigit(unit >> 8))
            output.append(hexDigit(unit >> 4))
            output.append(hexDigit(unit))
        }
    }
}

/// The lowercase hex digit of the low four bits of `nibble`, as Python's escapes use.
@inline(__always)
private func hexDigit(_ nibble: UInt32) -> UInt8 {
    let value = UInt8(nibble & 0xF)
    return value < 10 ? 48 + value : 87 + value
}

/// Decodes the scalar starting at `index` of valid UTF-8, returning it and its byte length.
@inline(__always)
func decodeScalar(_ utf8: UnsafeBufferPointer<UInt8>, at index: Int) -> (UInt32, Int) {
    let lead = UInt32(utf8[index])
    if lead < 0x80 { return (lead, 1) }
    if lead < 0xE0 { return ((lead & 0x1F) << 6 | UInt32(utf8[index + 1]) & 0x3F, 2) }
    if lead < 0xF0 {
        return ((lead & 0x0F) << 12 | (UInt32(utf8[index + 1]) & 0x3F) << 6 | UInt32(utf8[index + 2]) & 0x3F, 3)
    }
    let value =
        (lead & 0x07) << 18 | (UInt32(utf8[index + 1]) & 0x3F) << 12 | (UInt32(utf8[index + 2]) & 0x3F) << 6
        | UInt32(utf8[index + 3]) & 0x3F
    return (value, 4)
}

/// Calls `body` with the indices of `keys` in code-point order (for UTF-8, byte order), sorted
/// in a stack buffer (by insertion: the objects of requests have a handful of keys).
func withSortedIndices<Result>(
    _ keys: UnsafeBufferPointer<String>,
    _ body: (UnsafeBufferPointer<Int>) -> Result
) -> Result {
    withUnsafeTemporaryAllocation(of: Int.self, capacity: keys.count) { buffer in
        var order = buffer
        for index in keys.indices { order.initializeElement(at: index, to: index) }
        if keys.count > 16 {
            order.sort { utf8Precedes(keys[$0], keys[$1]) }
        } else {
            for sorted in 1..<max(keys.count, 1) {
                let candidate = order[sorted]
                var position = sorted
                while position > 0, utf8Precedes(keys[candidate], keys[order[position - 1]]) {
                    order[position] = order[position - 1]
                    position -= 1
                }
                order[position] = candidate
            }
        }
        return body(UnsafeBufferPointer(order))
    }
}

/// Whether `a` sorts before `b` byte by byte (code-point order for UTF-8).
@inline(__always)
func utf8Precedes(_ a: String, _ b: String) -> Bool {
    withUTF8Buffer(a) { a in
        withUTF8Buffer(b) { b in
            let common = min(a.count, b.count)
            if common > 0, let aBase = a.baseAddress, let bBase = b.baseAddress {
                let order = memcmp(aBase, bBase, common)
                if order != 0 { return order < 0 }
            }
            return a.count < b.count
        }
    }
}

/// Calls `body` with `text`'s UTF-8 bytes: in place for native strings (what the parser and
/// Swift literals make), from a copy otherwise.
@inline(__always)
package func withUTF8Buffer<Result>(_ text: String, _ body: (UnsafeBufferPointer<UInt8>) -> Result) -> Result {
    if let result = text.utf8.withContiguousStorageIfAvailable(body) { return result }
    var copy = text
    return copy.withUTF8(body)
}

extension JSONValue {
    /// `json.dumps(self, sort_keys=True)` as UTF-8 bytes.
    public func canonicalBytes() -> [UInt8] { JSONWriter.canonical.write(self) }

    /// `json.dump(self, f, indent=2)` followed by a newline: a recording file's exact bytes.
    public func fileBytes() -> [UInt8] {
        var bytes = JSONWriter.file.write(self)
        bytes.append(UInt8(ascii: "\n"))
        return bytes
    }

    /// Compact UTF-8 text for HTTP bodies.
    public func compactBytes() -> [UInt8] { JSONWriter.compact.write(self) }
}
