import APIRecorder
import PythonJSON
import TestSupport
import Testing

@Suite("Request identity against the shared vectors", .enabled(if: Shared.isAvailable, Shared.skipMessage))
struct RequestHashVectorTests {
    @Test func everyRequestHashVectorMatches() throws {
        let lines = try Shared.lines("vectors/request-hash.jsonl")
        #expect(lines.count >= 480)
        var failures = 0
        for (number, line) in lines.enumerated() {
            let vector = try JSONValue(parsing: line)
            let identity = try #require(Self.identity(of: vector), "line \(number + 1)")
            let canonical = String(decoding: identity.canonicalBytes, as: UTF8.self)
            let expected = try #require(vector["canonical"]?.stringValue)
            if !canonical.utf8.elementsEqual(expected.utf8) || identity.hash != vector["hash"]?.stringValue {
                failures += 1
                Issue.record("request-hash line \(number + 1):\n\(canonical.prefix(600))\n---\n\(expected.prefix(600))")
                if failures > 5 { return }
            }
        }
    }

    static func identity(of vector: JSONValue) -> RequestIdentity? {
        let testID = vector["test_id"]?.stringValue
        switch vector["kind"]?.stringValue {
        case "inference":
            return .inference(
                method: vector["method"]?.stringValue ?? "",
                url: vector["url"]?.stringValue ?? "",
                body: vector["body"] ?? .null,
                testID: testID
            )
        case "tool":
            return .tool(
                provider: vector["provider"] ?? .null,
                toolName: vector["tool_name"] ?? .null,
                kwargs: vector["kwargs"] ?? .null
            )
        case "http":
            return .http(
                testID: testID,
                url: vector["url"]?.stringValue ?? "",
                method: vector["method"]?.stringValue ?? "",
                payload: vector["payload"] ?? .null
            )
        default:
            return nil
        }
    }
}
