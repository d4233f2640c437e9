import APIRecorder
import HTTPTypes
import Testing

@testable import APIRecorderProxy

/// How a request's path picks its route and adapter, and where its test id comes from: what every
/// request asks before anything else, on the byte-level fast paths.
@Suite("Routing")
struct RoutingTests {
    @Test(arguments: [
        ("/openai/chat/completions", "openai", "/chat/completions"),
        ("//openai/chat", "openai", "/chat"),
        ("/openai", "openai", ""),
        ("/openai/", "openai", ""),
        ("/openai//x", "openai", "//x"),
        ("openai/x", "openai", "/x"),
        ("/é/ü", "é", "/ü"),
        ("/", "", ""),
        ("", "", ""),
    ])
    func theFirstSegmentNamesTheRoute(path: String, name: String, rest: String) {
        let (routeName, remainder) = ProxyResponder.routeName(of: path)
        #expect(String(routeName) == name)
        #expect(remainder == rest)
    }

    @Test(arguments: [
        ("/api/chat", "ollama"),
        ("/v1beta/models/gemini-2.0-flash:generateContent", "gemini"),
        ("/v1beta/models/gemini-2.0-flash:streamGenerateContent", "gemini"),
        ("/v1/messages", "http"),
        ("/v1/interactions/abc", "http"),
        ("/odd:path/messages", "http"),
        ("/v1/chat/completions", "openai"),
        ("/messages/v1", "openai"),
        ("", "openai"),
    ])
    func autoRoutesPickTheAdapterByPath(path: String, expected: String) {
        let kind: String
        switch AdapterSelection.select(.auto, forPath: path) {
        case .openAI: kind = "openai"
        case .plainHTTP: kind = "http"
        case .ollama: kind = "ollama"
        case .mcp: kind = "mcp"
        case .gemini: kind = "gemini"
        }
        #expect(kind == expected)
    }

    @Test func theTestIDHeaderInAnySpellingAndRepeatedHeadersJoined() {
        let identity = TestIdentity()
        var headers = HTTPFields()
        headers[HTTPField.Name("x-test-id")!] = "tests/a.py::test_one"
        #expect(identity.testID(for: headers) == "tests/a.py::test_one")
        headers.append(HTTPField(name: HTTPField.Name("X-Test-Id")!, value: "tests/b.py::test_two"))
        #expect(identity.testID(for: headers) == "tests/a.py::test_one, tests/b.py::test_two")
        var empty = HTTPFields()
        empty[HTTPField.Name("X-Test-ID")!] = ""
        identity.setCurrent("tests/c.py::test_three")
        #expect(identity.testID(for: empty) == "tests/c.py::test_three")
    }
}
