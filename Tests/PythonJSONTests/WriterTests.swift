import Testing

@testable import PythonJSON

/// The writer's own paths: key order in small and large objects, and separators of any length.
@Suite("JSON writer")
struct WriterTests {
    /// Keys in code-point order, which is not Swift's `String` order for every key: upper case
    /// before lower, `é` (U+00E9) after `z`, an astral character after both, a prefix first.
    static let keys = ["b", "a", "Z", "é", "z", "ab", "a\u{10348}", "", "A", "é2", "_", "0"]

    static func codePointSorted(_ keys: [String]) -> [String] {
        keys.sorted { Array($0.unicodeScalars.map(\.value)).lexicographicallyPrecedes($1.unicodeScalars.map(\.value)) }
    }

    static func object(_ keys: [String]) -> JSONValue {
        var object = JSONObject()
        for (index, key) in keys.enumerated() { object[key] = .integer(index) }
        return .object(object)
    }

    /// The keys of a canonical one-level object, in the order written.
    static func writtenKeys(_ value: JSONValue) throws -> [String] {
        let text = String(decoding: value.canonicalBytes(), as: UTF8.self)
        let reparsed = try JSONValue(parsing: text)
        return try #require(reparsed.objectValue).keys
    }

    @Test(arguments: [3, 12, 16, 17, 40])
    func objectKeysAreWrittenInCodePointOrder(count: Int) throws {
        var keys: [String] = []
        for index in 0..<count {
            keys.append(Self.keys[index % Self.keys.count] + String(repeating: "~", count: index / Self.keys.count))
        }
        #expect(try Self.writtenKeys(Self.object(keys)) == Self.codePointSorted(keys))
    }

    @Test func separatorsOfAnyLengthAndChangedAfterwardsAreUsed() {
        var writer = JSONWriter(sortKeys: false, indent: nil, itemSeparator: " ,  ", keySeparator: "=>")
        let value: JSONValue = ["a": [1, 2], "b": "c"]
        #expect(String(decoding: writer.write(value), as: UTF8.self) == #"{"a"=>[1 ,  2] ,  "b"=>"c"}"#)
        writer.itemSeparator = ";"
        writer.keySeparator = ": "
        #expect(String(decoding: writer.write(value), as: UTF8.self) == #"{"a": [1;2];"b": "c"}"#)
    }

    @Test func stringsCutFromOthersAreEscapedAsPythonDoes() {
        // A string cut from a larger one, with escapes, non-ASCII and an astral character.
        let text = "prefix \"quoted\" é \u{1F600}\n"
        let part = String(text.dropFirst(7))
        #expect(JSONValue.string(part).canonicalBytes() == Array(#""\"quoted\" \u00e9 \ud83d\ude00\n""#.utf8))
    }
}
