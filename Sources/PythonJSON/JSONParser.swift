/// A JSON syntax error, with the byte offset where the input stopped making sense.
public struct JSONParseError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Zero-based offset of the offending byte in the input.
    public let offset: Int
    /// What was wrong there, in words.
    public let reason: String

    public init(offset: Int, reason: String) {
        self.offset = offset
        self.reason = reason
    }

    public var description: String { "invalid JSON at byte \(offset): \(reason)" }
}

extension JSONValue {
    /// The deepest nesting of arrays and objects the parser accepts by default; deeper input is
    /// an error, never a stack overflow.
    public static let maximumDepth = 512

    /// Parses UTF-8 JSON text the way Python's `json.loads` does.
    ///
    /// It accepts what Python accepts (including `NaN`, `Infinity` and `-Infinity`, and duplicate
    /// keys, where the last value wins at the first key's position) and rejects invalid UTF-8,
    /// control characters inside strings, unpaired surrogate escapes, a byte-order mark, and
    /// anything after the value but whitespace.
    /// - Parameter maximumDepth: the deepest nesting accepted (``maximumDepth`` by default).
    /// - Throws: ``JSONParseError`` naming the byte offset.
    public init(
        parsing bytes: some Collection<UInt8>,
        maximumDepth: Int = JSONValue.maximumDepth
    ) throws(JSONParseError) {
        let result: Result<JSONValue, JSONParseError>? = bytes.withContiguousStorageIfAvailable { buffer in
            var parser = JSONParser(buffer, maximumDepth: maximumDepth)
            return Result { () throws(JSONParseError) in try parser.parseDocument() }
        }
        if let result {
            self = try result.get()
        } else {
            let copy = Array(bytes)
            self = try copy.withUnsafeBufferPointer { buffer throws(JSONParseError) in
                var parser = JSONParser(buffer, maximumDepth: maximumDepth)
                return try parser.parseDocument()
            }
        }
    }

    /// Parses a JSON object document but builds only the members named in `keys`; every other
    /// member is validated exactly as ``init(parsing:)-(Collection<UInt8>)`` would (syntax, UTF-8,
    /// escapes, depth) and then dropped. For callers that need a few members of a large document,
    /// such as the request of a recording whose response is megabytes of stream chunks.
    /// - Throws: ``JSONParseError`` for any defect anywhere in the document, or when it is not an object.
    public static func parseObject(
        _ bytes: some Collection<UInt8>,
        keepingOnly keys: Set<String>,
        maximumDepth: Int = JSONValue.maximumDepth
    ) throws(JSONParseError) -> JSONObject {
        let parse = { (buffer: UnsafeBufferPointer<UInt8>) -> Result<JSONObject, JSONParseError> in
            var parser = JSONParser(buffer, maximumDepth: maximumDepth)
            return Result { () throws(JSONParseError) in try parser.parseObjectDocument(keepingOnly: keys) }
        }
        if let result = bytes.withContiguousStorageIfAvailable(parse) { return try result.get() }
        return try Array(bytes).withUnsafeBufferPointer(parse).get()
    }

    /// Builds the members named in `keys` of a JSON object document, reading only as far as the
    /// last of them: what follows is neither built nor validated. For callers that need the first
    /// members of many large documents quickly and can live without a verdict on the rest (the
    /// request of every recording in a folder, to explain a replay miss).
    /// - Throws: ``JSONParseError`` for a defect before the last wanted member.
    public static func parseObjectPrefix(
        _ bytes: some Collection<UInt8>,
        keys: Set<String>,
        maximumDepth: Int = JSONValue.maximumDepth
    ) throws(JSONParseError) -> JSONObject {
        let parse = { (buffer: UnsafeBufferPointer<UInt8>) -> Result<JSONObject, JSONParseError> in
            var parser = JSONParser(buffer, maximumDepth: maximumDepth)
            return Result { () throws(JSONParseError) in try parser.parseObjectPrefix(keys: keys) }
        }
        if let result = bytes.withContiguousStorageIfAvailable(parse) { return try result.get() }
        return try Array(bytes).withUnsafeBufferPointer(parse).get()
    }

    /// Parses JSON text given as a `String`.
    public init(parsing text: String) throws(JSONParseError) {
        var text = text
        let result = text.withUTF8 { buffer in
            var parser = JSONParser(buffer)
            return Result { () throws(JSONParseError) in try parser.parseDocument() }
        }
        self = try result.get()
    }
}

/// A recursive-descent parser over a UTF-8 buffer.
struct JSONParser {
    private let input: UnsafeBufferPointer<UInt8>
    private var position = 0
    private var depth = 0
    private let maximumDepth: Int
    /// Set by a member callback to end ``scanMembers(buildingKeys:_:)`` after the member.
    private var stopRequested = false

    init(_ input: UnsafeBufferPointer<UInt8>, maximumDepth: Int = JSONValue.maximumDepth) {
        self.input = input
        self.maximumDepth = maximumDepth
    }

    mutating func parseDocument() throws(JSONParseError) -> JSONValue {
        if input.count >= 3, input[0] == 0xEF, input[1] == 0xBB, input[2] == 0xBF {
            throw JSONParseError(offset: 0, reason: "unexpected UTF-8 byte-order mark")
        }
        skipWhitespace()
        let value = try parseValue()
        skipWhitespace()
        if position != input.count {
            throw JSONParseError(offset: position, reason: "extra data after the JSON value")
        }
        return value
    }

    mutating func parseObjectDocument(keepingOnly keys: Set<String>) throws(JSONParseError) -> JSONObject {
        if input.count >= 3, input[0] == 0xEF, input[1] == 0xBB, input[2] == 0xBF {
            throw JSONParseError(offset: 0, reason: "unexpected UTF-8 byte-order mark")
        }
        skipWhitespace()
        guard position < input.count, input[position] == UInt8(ascii: "{") else {
            throw error("expected a JSON object")
        }
        var object = JSONObject()
        try scanMembers(buildingKeys: true) { parser, key throws(JSONParseError) in
            if let key, keys.contains(key) {
                object[key] = try parser.parseValue()
            } else {
                try parser.skipValue()
            }
        }
        skipWhitespace()
        if position != input.count {
            throw JSONParseError(offset: position, reason: "extra data after the JSON value")
        }
        return object
    }

    mutating func parseObjectPrefix(keys: Set<String>) throws(JSONParseError) -> JSONObject {
        skipWhitespace()
        guard position < input.count, input[position] == UInt8(ascii: "{") else {
            throw error("expected a JSON object")
        }
        var object = JSONObject()
        var missing = keys
        try scanMembers(buildingKeys: true) { parser, key throws(JSONParseError) in
            if let key, missing.contains(key) {
                object[key] = try parser.parseValue()
                missing.remove(key)
                if missing.isEmpty { parser.stopRequested = true }
            } else {
                try parser.skipValue()
            }
        }
        return object
    }

    // MARK: Validation without building

    /// Checks one value exactly as ``parseValue()`` would, without allocating anything.
    private mutating func skipValue() throws(JSONParseError) {
        guard position < input.count else { throw error("unexpected end of input, expected a value") }
        switch input[position] {
        case UInt8(ascii: "{"):
            try scanMembers(buildingKeys: false) { parser, _ throws(JSONParseError) in try parser.skipValue() }
        case UInt8(ascii: "["):
            try scanElements { parser throws(JSONParseError) in try parser.skipValue() }
        case UInt8(ascii: "\""):
            try skipString()
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            try skipNumber()
        default:
            _ = try parseValue()
        }
    }

    /// Checks one string as ``parseString()`` does, without building it.
    private mutating func skipString() throws(JSONParseError) {
        let start = position
        position += 1
        while position < input.count {
            position = skipPlainASCII(from: position)
            guard position < input.count else { break }
            let byte = input[position]
            if byte == UInt8(ascii: "\"") {
                position += 1
                return
            }
            if byte == UInt8(ascii: "\\") {
                guard position + 1 < input.count else { throw error("unterminated escape") }
                switch input[position + 1] {
                case UInt8(ascii: "u"):
                    _ = try parseUnicodeEscape()
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"),
                    UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    position += 2
                default:
                    throw error("invalid escape")
                }
            } else if byte < 0x20 {
                throw error("invalid control character in a string")
            } else {
                position = try validateMultibyte(at: position)
            }
        }
        throw JSONParseError(offset: start, reason: "unterminated string")
    }

    /// Checks a number's syntax as ``parseNumber()`` does, without converting it.
    private mutating func skipNumber() throws(JSONParseError) {
        if input[position] == UInt8(ascii: "-") {
            position += 1
            if position < input.count, input[position] == UInt8(ascii: "I") {
                try expectLiteral("Infinity")
                return
            }
        }
        guard position < input.count, isDigit(input[position]) else { throw error("expected a digit") }
        if input[position] == UInt8(ascii: "0") {
            position += 1
        } else {
            while position < input.count, isDigit(input[position]) { position += 1 }
        }
        if position + 1 < input.count, input[position] == UInt8(ascii: "."), isDigit(input[position + 1]) {
            position += 1
            while position < input.count, isDigit(input[position]) { position += 1 }
        }
        if position < input.count, input[position] == UInt8(ascii: "e") || input[position] == UInt8(ascii: "E") {
            var cursor = position + 1
            if cursor < input.count, input[cursor] == UInt8(ascii: "+") || input[cursor] == UInt8(ascii: "-") {
                cursor += 1
            }
            if cursor < input.count, isDigit(input[cursor]) {
                while cursor < input.count, isDigit(input[cursor]) { cursor += 1 }
                position = cursor
            }
        }
    }

    // MARK: Values

    private mutating func parseValue() throws(JSONParseError) -> JSONValue {
        guard position < input.count else { throw error("unexpected end of input, expected a value") }
        switch input[position] {
        case UInt8(ascii: "{"): return try parseObject()
        case UInt8(ascii: "["): return try parseArray()
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"):
            try expectLiteral("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try expectLiteral("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try expectLiteral("null")
            return .null
        case UInt8(ascii: "N"):
            try expectLiteral("NaN")
            return .float(.nan)
        case UInt8(ascii: "I"):
            try expectLiteral("Infinity")
            return .float(.infinity)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
        default: throw error("expected a value")
        }
    }

    private mutating func expectLiteral(_ literal: StaticString) throws(JSONParseError) {
        let count = literal.utf8CodeUnitCount
        guard input.count - position >= count else { throw error("expected a value") }
        let bytes = UnsafeBufferPointer(start: literal.utf8Start, count: count)
        for index in 0..<count where input[position + index] != bytes[index] {
            throw error("expected a value")
        }
        position += count
    }

    private mutating func enter() throws(JSONParseError) {
        depth += 1
        if depth > maximumDepth {
            throw error("nesting deeper than \(maximumDepth) levels")
        }
    }

    private mutating func parseArray() throws(JSONParseError) -> JSONValue {
        var elements: [JSONValue] = []
        try scanElements { parser throws(JSONParseError) in elements.append(try parser.parseValue()) }
        return .array(elements)
    }

    private mutating func parseObject() throws(JSONParseError) -> JSONValue {
        var object = JSONObject()
        var keyIndex: [ExactKey: Int]? = nil
        try scanMembers(buildingKeys: true) { parser, key throws(JSONParseError) in
            // `buildingKeys: true` gives every member its key.
            guard let key else { throw parser.error("a property without a name") }
            let value = try parser.parseValue()
            // Python keeps the first position of a repeated key and the last value.
            if object.count < 16 {
                if let existing = object.index(of: key) {
                    object.setValue(value, at: existing)
                } else {
                    object.appendUnchecked(key: key, value: value)
                }
                return
            }
            if keyIndex == nil {
                var index: [ExactKey: Int] = [:]
                for (position, existing) in object.keys.enumerated() { index[ExactKey(existing)] = position }
                keyIndex = index
            }
            if let existing = keyIndex?[ExactKey(key)] {
                object.setValue(value, at: existing)
            } else {
                keyIndex?[ExactKey(key)] = object.count
                object.appendUnchecked(key: key, value: value)
            }
        }
        return .object(object)
    }

    // MARK: Containers

    /// Walks an array at `position`: brackets, separators and depth, calling `element` with the
    /// parser positioned at each element.
    @inline(__always)
    private mutating func scanElements(
        _ element: (inout JSONParser) throws(JSONParseError) -> Void
    ) throws(JSONParseError) {
        try enter()
        defer { depth -= 1 }
        position += 1
        skipWhitespace()
        if position < input.count, input[position] == UInt8(ascii: "]") {
            position += 1
            return
        }
        while true {
            skipWhitespace()
            try element(&self)
            skipWhitespace()
            guard position < input.count else { throw error("unexpected end of input in an array") }
            switch input[position] {
            case UInt8(ascii: ","): position += 1
            case UInt8(ascii: "]"):
                position += 1
                return
            default: throw error("expected ',' or ']'")
            }
        }
    }

    /// Walks an object at `position`: braces, keys, colons, separators and depth, calling `member`
    /// with each key (`nil` unless `buildingKeys`, which saves building keys that are skipped)
    /// and the parser positioned at the value.
    @inline(__always)
    private mutating func scanMembers(
        buildingKeys: Bool,
        _ member: (inout JSONParser, String?) throws(JSONParseError) -> Void
    ) throws(JSONParseError) {
        try enter()
        defer { depth -= 1 }
        position += 1
        skipWhitespace()
        if position < input.count, input[position] == UInt8(ascii: "}") {
            position += 1
            return
        }
        while true {
            skipWhitespace()
            guard position < input.count, input[position] == UInt8(ascii: "\"") else {
                throw error("expected a property name in double quotes")
            }
            var key: String? = nil
            if buildingKeys {
                key = try parseString()
            } else {
                try skipString()
            }
            skipWhitespace()
            guard position < input.count, input[position] == UInt8(ascii: ":") else {
                throw error("expected ':' after a property name")
            }
            position += 1
            skipWhitespace()
            try member(&self, key)
            if stopRequested { return }
            skipWhitespace()
            guard position < input.count else { throw error("unexpected end of input in an object") }
            switch input[position] {
            case UInt8(ascii: ","): position += 1
            case UInt8(ascii: "}"):
                position += 1
                return
            default: throw error("expected ',' or '}'")
            }
        }
    }

    // MARK: Numbers

    private mutating func parseNumber() throws(JSONParseError) -> JSONValue {
        let start = position
        var negative = false
        if input[position] == UInt8(ascii: "-") {
            negative = true
            position += 1
            if position < input.count, input[position] == UInt8(ascii: "I") {
                try expectLiteral("Infinity")
                return .float(-.infinity)
            }
        }
        let integerStart = position
        guard position < input.count, isDigit(input[position]) else { throw error("expected a digit") }
        if input[position] == UInt8(ascii: "0") {
            position += 1
        } else {
            while position < input.count, isDigit(input[position]) { position += 1 }
        }
        let integerEnd = position
        var isFloat = false
        var fractionEnd = integerEnd
        if position < input.count, input[position] == UInt8(ascii: ".") {
            let dot = position
            position += 1
            guard position < input.count, isDigit(input[position]) else {
                // Python stops the number before a '.' with no digits, and then finds extra data.
                position = dot
                return integerValue(start: start, integerStart: integerStart, end: integerEnd, negative: negative)
            }
            while position < input.count, isDigit(input[position]) { position += 1 }
            fractionEnd = position
            isFloat = true
        }
        if position < input.count, input[position] == UInt8(ascii: "e") || input[position] == UInt8(ascii: "E") {
            let mark = position
            position += 1
            if position < input.count, input[position] == UInt8(ascii: "+") || input[position] == UInt8(ascii: "-") {
                position += 1
            }
            if position < input.count, isDigit(input[position]) {
                while position < input.count, isDigit(input[position]) { position += 1 }
                isFloat = true
            } else {
                // Like Python: the exponent is not part of the number, so it is extra data.
                position = mark
            }
        }
        if !isFloat {
            return integerValue(start: start, integerStart: integerStart, end: integerEnd, negative: negative)
        }
        return .float(
            parseDouble(
                start: start,
                integerStart: integerStart,
                integerEnd: integerEnd,
                fractionEnd: fractionEnd,
                end: position,
                negative: negative
            )
        )
    }

    private func integerValue(start: Int, integerStart: Int, end: Int, negative: Bool) -> JSONValue {
        let digits = end - integerStart
        if digits <= 18 {
            var value = 0
            for index in integerStart..<end { value = value &* 10 &+ Int(input[index] &- 48) }
            return .integer(negative ? -value : value)
        }
        var value = 0
        var overflow = false
        for index in integerStart..<end {
            let (times, o1) = value.multipliedReportingOverflow(by: 10)
            let digit = Int(input[index] &- 48)
            let (sum, o2) = negative ? times.subtractingReportingOverflow(digit) : times.addingReportingOverflow(digit)
            if o1 || o2 {
                overflow = true
                break
            }
            value = sum
        }
        if !overflow { return .integer(value) }
        return .bigInteger(String(decoding: UnsafeBufferPointer(rebasing: input[start..<end]), as: UTF8.self))
    }

    /// Converts the number's text to the nearest double. Short significands with small exponents
    /// take the exact fast path (both operands are exact doubles, so one IEEE operation rounds
    /// correctly); everything else goes through `Double(_:)`, which rounds correctly too.
    private func parseDouble(
        start: Int,
        integerStart: Int,
        integerEnd: Int,
        fractionEnd: Int,
        end: Int,
        negative: Bool
    ) -> Double {
        var significand: UInt64 = 0
        var significantDigits = 0
        var fractionDigits = 0
        for index in integerStart..<integerEnd {
            let digit = UInt64(input[index] &- 48)
            if significantDigits > 0 || digit != 0 { significantDigits += 1 }
            significand = significand &* 10 &+ digit
        }
        if fractionEnd > integerEnd {
            for index in (integerEnd + 1)..<fractionEnd {
                let digit = UInt64(input[index] &- 48)
                if significantDigits > 0 || digit != 0 { significantDigits += 1 }
                significand = significand &* 10 &+ digit
                fractionDigits += 1
            }
        }
        var exponent = 0
        if end > fractionEnd {
            var index = fractionEnd + 1
            var exponentNegative = false
            if input[index] == UInt8(ascii: "+") || input[index] == UInt8(ascii: "-") {
                exponentNegative = input[index] == UInt8(ascii: "-")
                index += 1
            }
            while index < end {
                if exponent < 100_000 { exponent = exponent * 10 + Int(input[index] &- 48) }
                index += 1
            }
            if exponentNegative { exponent = -exponent }
        }
        let decimalExponent = exponent - fractionDigits
        if significantDigits <= 15, (-22...22).contains(decimalExponent) {
            var value = Double(significand)
            if decimalExponent < 0 {
                value /= exactPowersOfTen[-decimalExponent]
            } else {
                value *= exactPowersOfTen[decimalExponent]
            }
            if significand == 0 || value.isFinite {
                return negative ? -value : value
            }
        }
        let text = String(decoding: UnsafeBufferPointer(rebasing: input[start..<end]), as: UTF8.self)
        return Double(text) ?? .nan
    }

    // MARK: Strings

    private mutating func parseString() throws(JSONParseError) -> String {
        position += 1
        let start = position
        // Fast path: no escapes; validate UTF-8 and control characters while scanning.
        while position < input.count {
            position = skipPlainASCII(from: position)
            guard position < input.count else { break }
            let byte = input[position]
            if byte == UInt8(ascii: "\"") {
                let text = String(decoding: UnsafeBufferPointer(rebasing: input[start..<position]), as: UTF8.self)
                position += 1
                return text
            }
            if byte == UInt8(ascii: "\\") { break }
            if byte < 0x20 { throw error("invalid control character in a string") }
            if byte < 0x80 {
                position += 1
            } else {
                position = try validateMultibyte(at: position)
            }
        }
        guard position < input.count else { throw JSONParseError(offset: start - 1, reason: "unterminated string") }
        var bytes: [UInt8] = Array(UnsafeBufferPointer(rebasing: input[start..<position]))
        while position < input.count {
            let byte = input[position]
            if byte == UInt8(ascii: "\"") {
                position += 1
                return String(decoding: bytes, as: UTF8.self)
            }
            if byte == UInt8(ascii: "\\") {
                try parseEscape(into: &bytes)
            } else if byte < 0x20 {
                throw error("invalid control character in a string")
            } else if byte < 0x80 {
                bytes.append(byte)
                position += 1
            } else {
                let next = try validateMultibyte(at: position)
                bytes.append(contentsOf: UnsafeBufferPointer(rebasing: input[position..<next]))
                position = next
            }
        }
        throw JSONParseError(offset: start - 1, reason: "unterminated string")
    }

    private mutating func parseEscape(into bytes: inout [UInt8]) throws(JSONParseError) {
        guard position + 1 < input.count else { throw error("unterminated escape") }
        let escape = input[position + 1]
        switch escape {
        case UInt8(ascii: "\""): bytes.append(0x22)
        case UInt8(ascii: "\\"): bytes.append(0x5C)
        case UInt8(ascii: "/"): bytes.append(0x2F)
        case UInt8(ascii: "b"): bytes.append(0x08)
        case UInt8(ascii: "f"): bytes.append(0x0C)
        case UInt8(ascii: "n"): bytes.append(0x0A)
        case UInt8(ascii: "r"): bytes.append(0x0D)
        case UInt8(ascii: "t"): bytes.append(0x09)
        case UInt8(ascii: "u"):
            appendUTF8(try parseUnicodeEscape(), to: &bytes)
            return
        default:
            throw error("invalid escape")
        }
        position += 2
    }

    /// Reads `\uXXXX` (and its low surrogate when it is a high one) at `position` and returns
    /// the scalar value.
    private mutating func parseUnicodeEscape() throws(JSONParseError) -> UInt32 {
        let escapeStart = position
        var scalar = try hexQuad(at: position + 2)
        position += 6
        if (0xD800...0xDBFF).contains(scalar) {
            guard position + 1 < input.count, input[position] == UInt8(ascii: "\\"),
                input[position + 1] == UInt8(ascii: "u")
            else { throw JSONParseError(offset: escapeStart, reason: "unpaired surrogate escape") }
            let low = try hexQuad(at: position + 2)
            guard (0xDC00...0xDFFF).contains(low) else {
                throw JSONParseError(offset: escapeStart, reason: "unpaired surrogate escape")
            }
            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
            position += 6
        } else if (0xDC00...0xDFFF).contains(scalar) {
            throw JSONParseError(offset: escapeStart, reason: "unpaired surrogate escape")
        }
        return scalar
    }

    private func hexQuad(at index: Int) throws(JSONParseError) -> UInt32 {
        guard index + 4 <= input.count else { throw JSONParseError(offset: index, reason: "invalid \\u escape") }
        var value: UInt32 = 0
        for offset in 0..<4 {
            let byte = input[index + offset]
            let digit: UInt32
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - 48)
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - 87)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - 55)
            default: throw JSONParseError(offset: index + offset, reason: "invalid \\u escape")
            }
            value = value << 4 | digit
        }
        return value
    }

    /// Checks one multi-byte UTF-8 sequence (shortest form, no surrogates, at most U+10FFFF) and
    /// returns the offset after it.
    private func validateMultibyte(at index: Int) throws(JSONParseError) -> Int {
        let lead = input[index]
        let length: Int
        var lower: UInt8 = 0x80
        var upper: UInt8 = 0xBF
        switch lead {
        case 0xC2...0xDF: length = 2
        case 0xE0:
            length = 3
            lower = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED:
            length = 3
            upper = 0x9F
        case 0xF0:
            length = 4
            lower = 0x90
        case 0xF1...0xF3: length = 4
        case 0xF4:
            length = 4
            upper = 0x8F
        default: throw JSONParseError(offset: index, reason: "invalid UTF-8")
        }
        guard index + length <= input.count else { throw JSONParseError(offset: index, reason: "invalid UTF-8") }
        let second = input[index + 1]
        guard second >= lower, second <= upper else { throw JSONParseError(offset: index, reason: "invalid UTF-8") }
        for offset in 2..<max(2, length) where input[index + offset] & 0xC0 != 0x80 {
            throw JSONParseError(offset: index, reason: "invalid UTF-8")
        }
        return index + length
    }

    // MARK: Helpers

    @inline(__always)
    private mutating func skipWhitespace() {
        let raw = UnsafeRawPointer(input.baseAddress)
        while position < input.count {
            let byte = input[position]
            if byte == 0x20, let raw, position + 8 <= input.count {
                // Indented files are mostly runs of spaces: find the first non-space of the next
                // eight bytes in one step.
                let word: UInt64 =
                    UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: position, as: UInt64.self))
                    ^ 0x2020_2020_2020_2020
                if word == 0 {
                    position += 8
                } else {
                    let spaces: Int = word.trailingZeroBitCount / 8
                    position += spaces
                }
            } else if byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 {
                position += 1
            } else {
                return
            }
        }
    }

    /// The offset of the first byte at or after `start` that is not plain string content:
    /// a quote, a backslash, a control character or a non-ASCII byte. Eight bytes at a time.
    @inline(__always)
    private func skipPlainASCII(from start: Int) -> Int {
        var index = start
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        let quotes: UInt64 = 0x2222_2222_2222_2222
        let backslashes: UInt64 = 0x5C5C_5C5C_5C5C_5C5C
        let spaces: UInt64 = 0x2020_2020_2020_2020
        if let base = input.baseAddress {
            let raw = UnsafeRawPointer(base)
            while index + 8 <= input.count {
                let word: UInt64 = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: index, as: UInt64.self))
                let quote: UInt64 = word ^ quotes
                let backslash: UInt64 = word ^ backslashes
                let quoteBytes: UInt64 = (quote &- ones) & ~quote
                let backslashBytes: UInt64 = (backslash &- ones) & ~backslash
                let controlBytes: UInt64 = word &- spaces
                let flagged: UInt64 = (quoteBytes | backslashBytes | controlBytes | word) & highs
                if flagged != 0 {
                    // The lowest flagged byte is the first special one (borrows only run upwards).
                    let offset: Int = flagged.trailingZeroBitCount / 8
                    return index + offset
                }
                index += 8
            }
        }
        while index < input.count {
            let byte = input[index]
            if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") || byte < 0x20 || byte >= 0x80 {
                return index
            }
            index += 1
        }
        return index
    }

    private func isDigit(_ byte: UInt8) -> Bool { byte &- 48 < 10 }

    private func error(_ reason: String) -> JSONParseError {
        JSONParseError(offset: position, reason: reason)
    }
}

/// Appends the UTF-8 encoding of a Unicode scalar value.
@inline(__always)
func appendUTF8(_ scalar: UInt32, to bytes: inout [UInt8]) {
    switch scalar {
    case 0..<0x80:
        bytes.append(UInt8(scalar))
    case 0x80..<0x800:
        bytes.append(UInt8(0xC0 | scalar >> 6))
        bytes.append(UInt8(0x80 | scalar & 0x3F))
    case 0x800..<0x10000:
        bytes.append(UInt8(0xE0 | scalar >> 12))
        bytes.append(UInt8(0x80 | scalar >> 6 & 0x3F))
        bytes.append(UInt8(0x80 | scalar & 0x3F))
    default:
        bytes.append(UInt8(0xF0 | scalar >> 18))
        bytes.append(UInt8(0x80 | scalar >> 12 & 0x3F))
        bytes.append(UInt8(0x80 | scalar >> 6 & 0x3F))
        bytes.append(UInt8(0x80 | scalar & 0x3F))
    }
}

/// Powers of ten that are exact doubles (10^0 ... 10^22).
private let exactPowersOfTen: [Double] = (0...22).map { exponent in
    var value = 1.0
    for _ in 0..<exponent { value *= 10 }
    return value
}

/// A dictionary key that compares strings by Unicode scalars, as Python does.
struct ExactKey: Hashable {
    let text: String
    init(_ text: String) { self.text = text }

    static func == (lhs: ExactKey, rhs: ExactKey) -> Bool { lhs.text.utf8.elementsEqual(rhs.text.utf8) }

    func hash(into hasher: inout Hasher) {
        for byte in text.utf8 { hasher.combine(byte) }
    }
}
