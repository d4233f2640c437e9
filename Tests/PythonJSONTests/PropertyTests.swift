import PropertyBased
import PythonJSON
import Testing

/// Property tests: write → parse → write is the identity, for both writers, and no byte string
/// crashes the parser.
@Suite("JSON round-trip and robustness properties")
struct PropertyTests {
    @Test func fileFormRoundTripsByteForByte() async {
        await propertyCheck(count: 300, input: Gen.uint64(in: UInt64.min...UInt64.max)) { seed in
            var generator = SplitMix64(seed: seed)
            let value = RandomJSON.value(depth: 4, using: &generator)
            let written = value.fileBytes()
            guard let reparsed = try? JSONValue(parsing: written) else {
                Issue.record("could not reparse \(String(decoding: written, as: UTF8.self))")
                return
            }
            #expect(reparsed == value)
            #expect(reparsed.fileBytes() == written)
        }
    }

    @Test func canonicalFormRoundTripsAndIsOrderIndependent() async {
        await propertyCheck(count: 300, input: Gen.uint64(in: UInt64.min...UInt64.max)) { seed in
            var generator = SplitMix64(seed: seed)
            let value = RandomJSON.value(depth: 4, using: &generator)
            let canonical = value.canonicalBytes()
            guard let reparsed = try? JSONValue(parsing: canonical) else {
                Issue.record("could not reparse \(String(decoding: canonical, as: UTF8.self))")
                return
            }
            #expect(reparsed.canonicalBytes() == canonical)
            #expect(RandomJSON.shuffled(value, using: &generator).canonicalBytes() == canonical)
        }
    }

    @Test func everyDoubleRoundTripsThroughRepr() async {
        await propertyCheck(count: 2000, input: Gen.uint64(in: UInt64.min...UInt64.max)) { bits in
            let value = Double(bitPattern: bits)
            guard value.isFinite else { return }
            let text = PythonFloat.repr(value)
            guard case .float(let parsed)? = try? JSONValue(parsing: text) else {
                Issue.record("repr \(text) did not parse as a float")
                return
            }
            #expect(parsed.bitPattern == value.bitPattern, "\(text)")
        }
    }

    @Test func mutatedInputNeverCrashesTheParser() async {
        let seedDocument = Array(
            #"{"a": [1, -2.5e-3, "x\u00e9\ud83d\ude00", {"b": null, "c": true}], "d": 12345678901234567890}"#.utf8
        )
        await propertyCheck(count: 3000, input: Gen.uint64(in: UInt64.min...UInt64.max)) { seed in
            var generator = SplitMix64(seed: seed)
            var bytes = seedDocument
            for _ in 0..<Int(generator.next() % 4 + 1) {
                let position = Int(generator.next() % UInt64(bytes.count))
                switch generator.next() % 3 {
                case 0: bytes[position] = UInt8(truncatingIfNeeded: generator.next())
                case 1: bytes.remove(at: position)
                default: bytes.insert(UInt8(truncatingIfNeeded: generator.next()), at: position)
                }
                if bytes.isEmpty { break }
            }
            // Either outcome is fine; a crash is not. What parses must write and reparse.
            if let value = try? JSONValue(parsing: bytes) {
                #expect((try? JSONValue(parsing: value.fileBytes())) == value)
            }
        }
    }
}

/// Random JSON values that exercise the awkward parts: big integers, every kind of float,
/// control and astral characters, canonically-equivalent keys.
enum RandomJSON {
    static let alphabet: [String] = [
        "a", "b", "Z", "é", "e\u{301}", "\u{0}", "\u{1f}", "\u{7f}", "\"", "\\", "/",
        "😀", "\u{2028}", "中", " ", "\n", "\t", "0", "9", "\u{10FFFF}",
    ]

    static func value(depth: Int, using generator: inout SplitMix64) -> JSONValue {
        let choice = generator.next() % (depth > 0 ? 10 : 7)
        switch choice {
        case 0: return .null
        case 1: return .bool(generator.next() % 2 == 0)
        case 2: return .integer(Int(bitPattern: UInt(generator.next())) >> Int(generator.next() % 64))
        case 3:
            return .bigInteger(
                (generator.next() % 2 == 0 ? "-" : "") + "9" + String(generator.next()) + String(generator.next())
            )
        case 4:
            let value = Double(bitPattern: generator.next())
            return .float(value.isFinite ? value : Double(generator.next() % 1000) / 7)
        case 5: return .float(Double(Int64(bitPattern: generator.next()) % 100_000) / 1000)
        case 6: return .string(string(using: &generator))
        case 7, 8:
            var object = JSONObject()
            for _ in 0..<(generator.next() % 5) {
                object[string(using: &generator)] = value(depth: depth - 1, using: &generator)
            }
            return .object(object)
        default:
            return .array((0..<(generator.next() % 5)).map { _ in value(depth: depth - 1, using: &generator) })
        }
    }

    static func string(using generator: inout SplitMix64) -> String {
        (0..<(generator.next() % 6)).map { _ in alphabet[Int(generator.next() % UInt64(alphabet.count))] }.joined()
    }

    /// The same value with every object's keys in another order.
    static func shuffled(_ value: JSONValue, using generator: inout SplitMix64) -> JSONValue {
        switch value {
        case .object(let object):
            var shuffled = JSONObject()
            for index in Array(object.keys.indices).shuffled(using: &generator) {
                shuffled.appendUnchecked(
                    key: object.keys[index],
                    value: Self.shuffled(object.values[index], using: &generator)
                )
            }
            return .object(shuffled)
        case .array(let elements):
            return .array(elements.map { shuffled($0, using: &generator) })
        default:
            return value
        }
    }
}
