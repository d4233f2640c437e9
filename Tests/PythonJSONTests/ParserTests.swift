import PythonJSON
import Testing

@Suite("Parsing with Python's data model")
struct ParserTests {
    private func parse(_ text: String) throws -> JSONValue { try JSONValue(parsing: Array(text.utf8)) }
    private func canonical(_ text: String) throws -> String {
        String(decoding: try parse(text).canonicalBytes(), as: UTF8.self)
    }

    @Test func integersKeepEveryDigit() throws {
        #expect(try parse("12345678901234567890123") == .bigInteger("12345678901234567890123"))
        #expect(try parse("-12345678901234567890123") == .bigInteger("-12345678901234567890123"))
        #expect(try parse("9223372036854775807") == .integer(Int.max))
        #expect(try parse("-9223372036854775808") == .integer(Int.min))
        #expect(try parse("9223372036854775808") == .bigInteger("9223372036854775808"))
        #expect(try canonical("[123456789012345678901234567890, -0, 0]") == "[123456789012345678901234567890, 0, 0]")
    }

    @Test func negativeZeroIsIntegerZeroButFloatMinusZeroStays() throws {
        #expect(try parse("-0") == .integer(0))
        let minusZero = try parse("-0.0")
        guard case .float(let value) = minusZero else {
            Issue.record("-0.0 should be a float")
            return
        }
        #expect(value == 0 && value.sign == .minus)
        #expect(try canonical("-0.0") == "-0.0")
    }

    @Test func floatsUsePythonRepr() throws {
        #expect(
            try canonical("[1E+2, 1e5, 0.00001, 1e16, 1.5e300, 5e-324, 1e400, -1e400]")
                == "[100.0, 100000.0, 1e-05, 1e+16, 1.5e+300, 5e-324, Infinity, -Infinity]"
        )
        #expect(try canonical("[NaN, Infinity, -Infinity]") == "[NaN, Infinity, -Infinity]")
        #expect(try canonical("0.1") == "0.1")
        #expect(try canonical("1.0000000000000002") == "1.0000000000000002")
        #expect(try canonical("123456789012345678901234567890.5") == "1.2345678901234568e+29")
    }

    @Test func duplicateKeysKeepFirstPositionAndLastValue() throws {
        let value = try parse(#"{"a": 1, "b": 2, "a": 3}"#)
        #expect(value.objectValue?.keys == ["a", "b"])
        #expect(value["a"] == .integer(3))
        // Past the linear-scan threshold as well.
        let many = (0..<40).map { "\"k\($0)\": \($0)" }.joined(separator: ", ")
        let big = try parse("{\(many), \"k3\": \"again\"}")
        #expect(big.objectValue?.count == 40)
        #expect(big["k3"] == .string("again"))
        #expect(big.objectValue?.keys[3] == "k3")
    }

    @Test func keysAreComparedByScalarsNotCanonicalEquivalence() throws {
        // U+00E9 and e + U+0301 are equal Swift strings but different Python keys.
        let value = try parse(#"{"\u00e9": 1, "e\u0301": 2}"#)
        #expect(value.objectValue?.count == 2)
        #expect(try canonical(#"{"e\u0301": 2, "\u00e9": 1}"#) == #"{"e\u0301": 2, "\u00e9": 1}"#)
    }

    @Test func escapesAndAstralCharacters() throws {
        let text = #"["\ud83d\ude00", "\u00e1", "\"\\\/\b\f\n\r\t", "\u0000\u001f\u007f"]"#
        #expect(try canonical(text) == #"["\ud83d\ude00", "\u00e1", "\"\\/\b\f\n\r\t", "\u0000\u001f\u007f"]"#)
        #expect(try parse("\"😀\"") == .string("😀"))
    }

    @Test(arguments: [
        ("", 0, "unexpected end of input"),
        ("[1, 2", 5, "unexpected end of input in an array"),
        ("{\"a\" 1}", 5, "expected ':'"),
        ("[1,]", 3, "expected a value"),
        ("{\"a\": 1,}", 8, "expected a property name"),
        ("01", 1, "extra data"),
        ("1.", 1, "extra data"),
        ("1e", 1, "extra data"),
        ("[1] x", 4, "extra data"),
        ("\"abc", 0, "unterminated string"),
        ("\"a\tb\"", 2, "invalid control character"),
        ("\"\\x\"", 1, "invalid escape"),
        ("\"\\u12G4\"", 5, "invalid \\u escape"),
        ("\"\\ud83d\"", 1, "unpaired surrogate"),
        ("\"\\ude00\"", 1, "unpaired surrogate"),
        ("tru", 0, "expected a value"),
        ("-", 1, "expected a digit"),
        ("-NaN", 1, "expected a digit"),
    ])
    func malformedInputNamesTheOffset(input: String, offset: Int, reason: String) {
        #expect {
            try JSONValue(parsing: Array(input.utf8))
        } throws: { error in
            guard let error = error as? JSONParseError else { return false }
            return error.offset == offset && error.reason.contains(reason)
        }
    }

    @Test func invalidUTF8IsRejectedWithItsOffset() {
        let cases: [[UInt8]] = [
            [0x22, 0x61, 0xFF, 0x22],  // invalid byte
            [0x22, 0x61, 0xC3, 0x22],  // truncated sequence
            [0x22, 0x61, 0xC0, 0xAF, 0x22],  // overlong
            [0x22, 0x61, 0xED, 0xA0, 0x80, 0x22],  // encoded surrogate
            [0x22, 0x61, 0xF4, 0x90, 0x80, 0x80, 0x22],  // beyond U+10FFFF
        ]
        for bytes in cases {
            #expect {
                try JSONValue(parsing: bytes)
            } throws: { error in
                (error as? JSONParseError).map { $0.offset == 2 && $0.reason == "invalid UTF-8" } ?? false
            }
        }
    }

    @Test func byteOrderMarkIsRejected() {
        #expect(throws: JSONParseError.self) { try JSONValue(parsing: [0xEF, 0xBB, 0xBF] + Array("{}".utf8)) }
    }

    @Test func deepNestingIsAnErrorNotACrash() throws {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(throws: JSONParseError.self) { try JSONValue(parsing: Array(deep.utf8)) }
        let fine =
            String(repeating: "[", count: JSONValue.maximumDepth)
            + String(repeating: "]", count: JSONValue.maximumDepth)
        _ = try JSONValue(parsing: Array(fine.utf8))
    }

    @Test func fileWriterMatchesPythonIndentation() throws {
        let value = try parse(#"{"a": [], "b": {}, "c": [1, {"d": null}], "e": "\u00e9"}"#)
        let expected = """
            {
              "a": [],
              "b": {},
              "c": [
                1,
                {
                  "d": null
                }
              ],
              "e": "\\u00e9"
            }

            """
        #expect(String(decoding: value.fileBytes(), as: UTF8.self) == expected)
    }

    @Test func compactWriterKeepsUnicode() throws {
        let value = try parse(#"{"a": "\u00e9\u007f", "b": [1, 2.5]}"#)
        #expect(String(decoding: value.compactBytes(), as: UTF8.self) == "{\"a\":\"é\u{7f}\",\"b\":[1,2.5]}")
    }
}
