public import PythonJSON

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The normalisation N(value) applied to request bodies and payloads before hashing.
///
/// Volatile details (float noise, vector-search scores, document ids) must not change a request's
/// identity, or replays miss. The rules, their order and their quirks follow the reference
/// recorder exactly; see docs/recording-format.md.
public enum HashNormalization {
    /// Normalises a body: floats rounded to 5 decimals, strings rewritten by ``normalizeString(_:)``,
    /// `project_id` dropped from `extra_body`/`extra_query` of root objects, and a top-level
    /// `stream_options` dropped when `excludeStreamOptions` (Bedrock) is set.
    ///
    /// As in the reference, an object directly inside an array counts as a root object again.
    public static func normalize(_ value: JSONValue, excludeStreamOptions: Bool = false) -> JSONValue {
        normalized(value, isRoot: true, excludeStreamOptions: excludeStreamOptions) ?? value
    }

    /// The normalised value, or `nil` when normalisation leaves it unchanged (so that unchanged
    /// parts of a body are shared, not copied).
    private static func normalized(_ value: JSONValue, isRoot: Bool, excludeStreamOptions: Bool) -> JSONValue? {
        switch value {
        case .object(let original):
            // Walked through the buffer, and copied only when a member changes: most bodies need
            // nothing, and a walk that copied each node would retain and release it.
            var rewritten: JSONObject?
            original.values.withUnsafeBufferPointer { values in
                for index in values.indices {
                    if let replacement = normalized(values[index], isRoot: false, excludeStreamOptions: false) {
                        if rewritten == nil { rewritten = original }
                        rewritten?.setValue(replacement, at: index)
                    }
                }
            }
            let hasStreamOptions = excludeStreamOptions && original.index(of: "stream_options") != nil
            let extraKeys = isRoot ? extraKeysWithProjectID(original) : (false, false)
            guard rewritten != nil || hasStreamOptions || extraKeys.0 || extraKeys.1 else { return nil }
            var object = rewritten ?? original
            if hasStreamOptions { object.removeValue(forKey: "stream_options") }
            for (extraKey, present) in [("extra_body", extraKeys.0), ("extra_query", extraKeys.1)] where present {
                if case .object(var extra)? = object[extraKey] {
                    extra.removeValue(forKey: "project_id")
                    object[extraKey] = .object(extra)
                }
            }
            return .object(object)
        case .array(let original):
            var rewritten: [JSONValue]?
            original.withUnsafeBufferPointer { elements in
                for index in elements.indices {
                    if let replacement = normalized(elements[index], isRoot: true, excludeStreamOptions: false) {
                        if rewritten == nil { rewritten = original }
                        rewritten?[index] = replacement
                    }
                }
            }
            return rewritten.map(JSONValue.array)
        case .float(let number):
            let rounded = PythonFloat.round5(number)
            return rounded.bitPattern == number.bitPattern ? nil : .float(rounded)
        case .string(let text):
            guard mightNeedNormalization(text) else { return nil }
            let result = normalizeString(text)
            return result.utf8.elementsEqual(text.utf8) ? nil : .string(result)
        default:
            return nil
        }
    }

    /// Whether a root object's `extra_body` and `extra_query` are objects with a `project_id`.
    private static func extraKeysWithProjectID(_ object: JSONObject) -> (Bool, Bool) {
        func hasProjectID(_ key: String) -> Bool {
            guard let index = object.index(of: key), case .object(let extra) = object.values[index] else {
                return false
            }
            return extra.index(of: "project_id") != nil
        }
        return (hasProjectID("extra_body"), hasProjectID("extra_query"))
    }

    /// Applies the string rules in order: `score: <number>` → `score: __NORMALIZED__`;
    /// `, attributes: {...}` removed; `document_id: <uuid>` and `<|<uuid>|>` replaced; every
    /// decimal with four or more fraction digits re-printed with five.
    ///
    /// The patterns use Python's Unicode meaning of `\d` (any decimal digit) and `\s`.
    public static func normalizeString(_ text: String) -> String {
        guard mightNeedNormalization(text) else { return text }
        var scalars = text.unicodeScalars.map(\.value)
        var changed = false
        changed = replaceScores(&scalars) || changed
        changed = removeAttributes(&scalars) || changed
        changed = replaceDocumentIDs(&scalars) || changed
        changed = replaceCitations(&scalars) || changed
        changed = roundLongDecimals(&scalars) || changed
        guard changed else { return text }
        var result = String.UnicodeScalarView()
        for value in scalars {
            if let scalar = Unicode.Scalar(value) { result.append(scalar) }
        }
        return String(result)
    }

    /// A cheap pre-check on the UTF-8 bytes. Rules 1–4 need one of their ASCII literals; rule 5
    /// needs a '.' between two digits. A non-ASCII byte next to the '.' may be a Unicode digit, so
    /// it counts as one here.
    static func mightNeedNormalization(_ text: String) -> Bool {
        withUTF8Buffer(text) { utf8 in
            let count = utf8.count
            var index = 0
            while index < count {
                switch utf8[index] {
                case UInt8(ascii: "."):
                    if index > 0, index + 1 < count, mayBeDigit(utf8[index - 1]), mayBeDigit(utf8[index + 1]) {
                        return true
                    }
                case UInt8(ascii: ":"):
                    if endsWith(utf8, at: index, "score") || endsWith(utf8, at: index, "attributes")
                        || endsWith(utf8, at: index, "document_id")
                    {
                        return true
                    }
                case UInt8(ascii: "<"):
                    if index + 1 < count, utf8[index + 1] == UInt8(ascii: "|") { return true }
                default:
                    break
                }
                index += 1
            }
            return false
        }
    }

    @inline(__always)
    private static func mayBeDigit(_ byte: UInt8) -> Bool { byte &- 48 < 10 || byte >= 0x80 }

    /// Whether the bytes just before `end` spell `word`.
    private static func endsWith(_ utf8: UnsafeBufferPointer<UInt8>, at end: Int, _ word: StaticString) -> Bool {
        let length = word.utf8CodeUnitCount
        guard end >= length else { return false }
        let start = end - length
        for offset in 0..<length where utf8[start + offset] != word.utf8Start[offset] { return false }
        return true
    }

    // MARK: Rule 1: score:\s*[-+]?\d*\.?\d+(?:[eE][-+]?\d+)?

    private static func replaceScores(_ text: inout [UInt32]) -> Bool {
        replaceMatches(in: &text, literal: "score:", replacement: "score: __NORMALIZED__") { text, start in
            var index = skipSpaces(text, from: start)
            if index < text.count, text[index] == 0x2B || text[index] == 0x2D { index += 1 }
            let integerEnd = skipDigits(text, from: index)
            var end: Int
            if integerEnd < text.count, text[integerEnd] == 0x2E, integerEnd + 1 < text.count,
                isDigit(text[integerEnd + 1])
            {
                end = skipDigits(text, from: integerEnd + 1)
            } else if integerEnd > index {
                end = integerEnd
            } else {
                return nil
            }
            if end < text.count, text[end] == 0x65 || text[end] == 0x45 {
                var exponent = end + 1
                if exponent < text.count, text[exponent] == 0x2B || text[exponent] == 0x2D { exponent += 1 }
                let exponentEnd = skipDigits(text, from: exponent)
                if exponentEnd > exponent { end = exponentEnd }
            }
            return end
        }
    }

    // MARK: Rule 2: ,?\s*attributes:\s*\{[^}]*\}

    private static func removeAttributes(_ text: inout [UInt32]) -> Bool {
        let literal = Array("attributes:".unicodeScalars.map(\.value))
        var output: [UInt32] = []
        var copiedUpTo = 0
        var index = 0
        var changed = false
        while let found = find(literal, in: text, from: index) {
            var cursor = skipSpaces(text, from: found + literal.count)
            guard cursor < text.count, text[cursor] == 0x7B,
                let close = text[(cursor + 1)...].firstIndex(of: 0x7D)
            else {
                index = found + 1
                continue
            }
            cursor = close + 1
            // The match starts as far left as the pattern allows: spaces, then one optional comma.
            var start = found
            while start > copiedUpTo, isSpace(text[start - 1]) { start -= 1 }
            if start > copiedUpTo, text[start - 1] == 0x2C { start -= 1 }
            output.append(contentsOf: text[copiedUpTo..<start])
            copiedUpTo = cursor
            index = cursor
            changed = true
        }
        guard changed else { return false }
        output.append(contentsOf: text[copiedUpTo...])
        text = output
        return true
    }

    // MARK: Rules 3 and 4: document_id:\s*<uuid> and <|<uuid>|>

    private static func replaceDocumentIDs(_ text: inout [UInt32]) -> Bool {
        replaceMatches(in: &text, literal: "document_id:", replacement: "document_id: __NORMALIZED__") {
            text,
            start in
            matchUUID(text, at: skipSpaces(text, from: start))
        }
    }

    private static func replaceCitations(_ text: inout [UInt32]) -> Bool {
        replaceMatches(in: &text, literal: "<|", replacement: "<|__NORMALIZED__|>") { text, start in
            guard let end = matchUUID(text, at: start), end + 1 < text.count, text[end] == 0x7C,
                text[end + 1] == 0x3E
            else { return nil }
            return end + 2
        }
    }

    /// Matches `[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12}` and returns its end.
    private static func matchUUID(_ text: [UInt32], at start: Int) -> Int? {
        var index = start
        for (groupIndex, length) in [8, 4, 4, 4, 12].enumerated() {
            if groupIndex > 0 {
                guard index < text.count, text[index] == 0x2D else { return nil }
                index += 1
            }
            for _ in 0..<length {
                guard index < text.count else { return nil }
                let scalar = text[index]
                guard (0x30...0x39).contains(scalar) || (0x61...0x66).contains(scalar) else { return nil }
                index += 1
            }
        }
        return index
    }

    // MARK: Rule 5: -?\d+\.\d{4,}  →  "%.5f" % float(match)

    private static func roundLongDecimals(_ text: inout [UInt32]) -> Bool {
        var output: [UInt32] = []
        var copiedUpTo = 0
        var index = 0
        var changed = false
        while index < text.count {
            guard isDigit(text[index]) else {
                index += 1
                continue
            }
            let runEnd = skipDigits(text, from: index)
            if runEnd < text.count, text[runEnd] == 0x2E {
                let fractionEnd = skipDigits(text, from: runEnd + 1)
                if fractionEnd - (runEnd + 1) >= 4 {
                    let start = index > copiedUpTo && text[index - 1] == 0x2D ? index - 1 : index
                    var ascii = ""
                    for scalar in text[start..<fractionEnd] {
                        if let digit = decimalDigitValue(scalar) {
                            ascii.unicodeScalars.append(Unicode.Scalar(UInt8(48 + digit)))
                        } else {
                            ascii.unicodeScalars.append(Unicode.Scalar(UInt8(truncatingIfNeeded: scalar)))
                        }
                    }
                    let number = strtod(ascii, nil)
                    output.append(contentsOf: text[copiedUpTo..<start])
                    output.append(contentsOf: PythonFloat.formatFixed5(number).unicodeScalars.map(\.value))
                    copiedUpTo = fractionEnd
                    index = fractionEnd
                    changed = true
                    continue
                }
            }
            index = runEnd
        }
        guard changed else { return false }
        output.append(contentsOf: text[copiedUpTo...])
        text = output
        return true
    }

    // MARK: Matching helpers

    /// Replaces, left to right and without overlaps, each occurrence of `literal` whose tail
    /// `matchTail` accepts (returning the match's end) with `replacement`.
    private static func replaceMatches(
        in text: inout [UInt32],
        literal: String,
        replacement: String,
        matchTail: ([UInt32], Int) -> Int?
    ) -> Bool {
        let literalScalars = literal.unicodeScalars.map(\.value)
        let replacementScalars = replacement.unicodeScalars.map(\.value)
        var output: [UInt32] = []
        var copiedUpTo = 0
        var index = 0
        var changed = false
        while let found = find(literalScalars, in: text, from: index) {
            guard let end = matchTail(text, found + literalScalars.count) else {
                index = found + 1
                continue
            }
            output.append(contentsOf: text[copiedUpTo..<found])
            output.append(contentsOf: replacementScalars)
            copiedUpTo = end
            index = end
            changed = true
        }
        guard changed else { return false }
        output.append(contentsOf: text[copiedUpTo...])
        text = output
        return true
    }

    private static func find(_ literal: [UInt32], in text: [UInt32], from start: Int) -> Int? {
        guard literal.count <= text.count else { return nil }
        var index = start
        while index + literal.count <= text.count {
            if text[index] == literal[0] {
                var matches = true
                for offset in 1..<literal.count where text[index + offset] != literal[offset] {
                    matches = false
                    break
                }
                if matches { return index }
            }
            index += 1
        }
        return nil
    }

    private static func skipSpaces(_ text: [UInt32], from start: Int) -> Int {
        var index = start
        while index < text.count, isSpace(text[index]) { index += 1 }
        return index
    }

    private static func skipDigits(_ text: [UInt32], from start: Int) -> Int {
        var index = start
        while index < text.count, isDigit(text[index]) { index += 1 }
        return index
    }

    /// Python's `\s` for `str` patterns, which is `str.isspace()`.
    static func isSpace(_ scalar: UInt32) -> Bool {
        switch scalar {
        case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F,
            0x3000:
            return true
        default:
            return false
        }
    }

    /// Python's `\d` for `str` patterns: any character of category Nd.
    static func isDigit(_ scalar: UInt32) -> Bool {
        if scalar < 0x80 { return scalar &- 0x30 < 10 }
        return decimalDigitValue(scalar) != nil
    }

    static func decimalDigitValue(_ scalar: UInt32) -> Int? {
        if scalar < 0x80 { return scalar &- 0x30 < 10 ? Int(scalar - 0x30) : nil }
        guard let unicodeScalar = Unicode.Scalar(scalar),
            unicodeScalar.properties.generalCategory == .decimalNumber,
            let value = unicodeScalar.properties.numericValue
        else { return nil }
        return Int(value)
    }
}
