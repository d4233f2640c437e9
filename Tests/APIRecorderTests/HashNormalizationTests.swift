import APIRecorder
import Foundation
import TestSupport
import Testing

@Suite("Hash normalisation rules")
struct HashNormalizationTests {
    @Test(arguments: [
        ("score: 0.987654", "score: __NORMALIZED__"),
        ("a score:-1.5e-3 b", "a score: __NORMALIZED__ b"),
        ("score: 1.", "score: __NORMALIZED__."),
        ("score: .5x", "score: __NORMALIZED__x"),
        ("score: abc", "score: abc"),
        ("x, attributes: {a: 1} y", "x y"),
        ("x,  attributes:{} y", "x y"),
        ("attributes: {unterminated", "attributes: {unterminated"),
        ("document_id: 0123abcd-0123-4567-89ab-0123456789ab!", "document_id: __NORMALIZED__!"),
        ("document_id: 0123ABCD-0123-4567-89ab-0123456789ab", "document_id: 0123ABCD-0123-4567-89ab-0123456789ab"),
        ("see <|0123abcd-0123-4567-89ab-0123456789ab|>", "see <|__NORMALIZED__|>"),
        ("pi is 3.14159265 and -2.71828182", "pi is 3.14159 and -2.71828"),
        ("short 1.234 stays", "short 1.234 stays"),
        ("1.23.45678", "1.23.45678"),
        ("v1.2.34567", "v1.2.34567"),
        ("\u{661}\u{662}.\u{663}\u{664}\u{665}\u{666}\u{667}", "12.34567"),
        ("score:\u{3000}7 then 0.123456", "score: __NORMALIZED__ then 0.12346"),
    ])
    func stringRules(input: String, expected: String) {
        #expect(HashNormalization.normalizeString(input) == expected)
    }

    @Test func floatsAreRoundedAndProjectIDsDropped() throws {
        let body = try JSONValue(
            parsing: #"""
                {"temperature": 0.123456789, "extra_body": {"project_id": "p", "keep": 1},
                 "messages": [{"extra_query": {"project_id": "q"}}], "nested": {"extra_body": {"project_id": "r"}},
                 "stream_options": {"include_usage": true}}
                """#
        )
        let normalized = HashNormalization.normalize(body)
        #expect(normalized["temperature"] == .float(0.12346))
        #expect(normalized["extra_body"] == ["keep": 1])
        // As in the reference, an object inside a list counts as a root object again...
        #expect(normalized["messages"]?.arrayValue?.first?["extra_query"] == .object(JSONObject()))
        // ...but an object inside an object does not.
        #expect(normalized["nested"]?["extra_body"]?["project_id"] == "r")
        #expect(normalized["stream_options"] != nil)
        #expect(HashNormalization.normalize(body, excludeStreamOptions: true)["stream_options"] == nil)
    }

    @Test func bedrockHostsDropStreamOptionsAndModelListsDropTheTestID() {
        let body: JSONValue = ["model": "m", "stream_options": ["include_usage": true]]
        let bedrock = RequestIdentity.inference(
            method: "post",
            url: "https://bedrock-runtime.us-east-1.amazonaws.com/openai/v1/chat/completions",
            body: body,
            testID: "t"
        )
        #expect(bedrock.hashInput["body"]?["stream_options"] == nil)
        #expect(bedrock.hashInput["method"] == "POST")
        let models = RequestIdentity.inference(
            method: "GET",
            url: "http://localhost:11434/v1/models",
            body: [:],
            testID: "t"
        )
        #expect(models.hashInput["test_id"] == nil)
        let doubled = RequestIdentity.inference(
            method: "GET",
            url: "http://localhost/v1/v1/models",
            body: [:],
            testID: "t"
        )
        #expect(doubled.hashInput["test_id"] == "t")
    }

    @Test(arguments: [
        ("https://api.openai.com/v1/v1/chat/completions", "/v1/v1/chat/completions"),
        ("vertexai:///generate_content", "/generate_content"),
        ("http://host:8080/path;params?query#fragment", "/path"),
        ("http://host/a;b/c;d", "/a;b/c"),
        ("custom://host/a;b", "/a;b"),
        ("no-scheme/path?x", "no-scheme/path"),
        ("  \thttp://h/p\n", "/p"),
        ("http://h", ""),
        ("1http://h/p", "1http://h/p"),
    ])
    func identityUsesPythonsURLPath(url: String, path: String) {
        let identity = RequestIdentity.inference(method: "POST", url: url, body: [:], testID: nil)
        #expect(identity.hashInput["endpoint"] == .string(path))
    }

    /// Random strings built from the rules' trigger pieces must normalise exactly as Python's
    /// regular expressions do (scripts/hash_baseline.py).
    @Test(.enabled(if: Python.isAvailable, "python3 is not on PATH"))
    func randomStringsAgreeWithPythonRegexes() throws {
        let pieces = [
            "score:", "score: ", " ", ",", ", ", "attributes:", " {", "{", "}", "a: 1", "document_id:",
            "0123abcd-0123-4567-89ab-0123456789ab", "<|", "|>", "-", ".", "1", "23", "4567", "0.123456", "e5", "E-2",
            "+", "\u{661}", "\u{3000}", "\u{85}", "x", "é", "\n", "12.3456789",
        ]
        var generator = SystemRandomNumberGenerator()
        var inputs: [String] = []
        for _ in 0..<3000 {
            inputs.append(
                (0..<Int.random(in: 1...12, using: &generator)).map { _ in pieces.randomElement(using: &generator)! }
                    .joined()
            )
        }
        let script = """
            import json, sys
            sys.path.insert(0, sys.argv[1])
            import hash_baseline
            for line in sys.stdin:
                print(json.dumps(hash_baseline.normalize_string(json.loads(line))))
            """
        let scripts = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("scripts").path
        let input = inputs.map { String(decoding: JSONValue.string($0).canonicalBytes(), as: UTF8.self) }.joined(
            separator: "\n"
        )
        let output = try Python.run(script, arguments: [scripts], input: input).split(separator: "\n")
        try #require(output.count == inputs.count)
        for (text, line) in zip(inputs, output) {
            let expected = try JSONValue(parsing: String(line)).stringValue
            #expect(HashNormalization.normalizeString(text) == expected, "input \(String(reflecting: text))")
        }
    }
}

@Suite("Method case")
struct MethodCaseTests {
    /// The identity upper-cases the method as Python's `str.upper()` does; the fast path that
    /// keeps an upper-case ASCII method as it is must agree with it.
    @Test(arguments: [
        ("POST", "POST"), ("post", "POST"), ("Get", "GET"), ("M-SEARCH", "M-SEARCH"), ("pöst", "PÖST"), ("", ""),
    ])
    func methodsAreUpperCased(method: String, expected: String) {
        #expect(method.pythonUpper == expected)
        let lower = RequestIdentity.inference(method: method, url: "http://h/v1/x", body: [:], testID: nil)
        let upper = RequestIdentity.inference(method: expected, url: "http://h/v1/x", body: [:], testID: nil)
        #expect(lower.hash == upper.hash)
    }
}
