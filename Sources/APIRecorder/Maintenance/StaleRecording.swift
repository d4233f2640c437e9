import PythonJSON

/// Why a recording's file name is not the hash its content implies, as far as can be told.
///
/// A name is a hash, which cannot be undone; but it can be checked against the rules a recording
/// may have been named by: an older recorder's, or today's with one input left out. A match says
/// which rule named the file; no match means its request was edited after it was recorded (or
/// another tool, with rules of its own, wrote it).
public enum StaleRecording {
    /// The rules under which `name` (`<hash>.json`, or `models-<hash>-<digest>.json`) is the hash
    /// of `recording`'s request, in words; empty when none of them gives it.
    public static func namingRules(of recording: Recording, named name: String) -> [String] {
        guard let hash = hashPart(of: name) else { return ["the file name holds no 64-hex hash"] }
        let request = recording.request
        var rules: [String] = []
        for (rule, input) in variants(of: request, fileTestID: recording.testID) {
            if RequestIdentity.sha256Hex(input.canonicalBytes()) == hash { rules.append(rule) }
        }
        return rules
    }

    /// Where `recording` should live for its test id, when that is not `folder` (relative to the root).
    public static func misplacement(of recording: Recording, inFolder folder: String) -> String? {
        guard let expected = try? RecordingLayout.relativeDirectory(forTestID: recording.testID) else { return nil }
        return expected == folder ? nil : expected
    }

    /// The 64-hex hash a recording file's name carries.
    static func hashPart(of name: String) -> String? {
        var text = Substring(name)
        if text.hasSuffix(".json") { text = text.dropLast(5) }
        if text.hasPrefix("models-") { text = text.dropFirst(7).prefix(64) }
        guard text.count == 64, text.allSatisfy(\.isHexDigit) else { return nil }
        return String(text)
    }

    /// Identity inputs under other rules, each with the rule in words.
    private static func variants(of request: JSONObject, fileTestID: String?) -> [(String, JSONValue)] {
        let testID: JSONValue = fileTestID.map(JSONValue.string) ?? .null
        switch Recording.Kind(request: request) {
        case .inference:
            let method = request["method"]?.stringValue ?? ""
            let url = request["url"]?.stringValue ?? ""
            let body = request["body"] ?? .null
            let path = PythonURL(parsing: url).path
            let normalized = HashNormalization.normalize(body)
            func input(_ method: String, _ endpoint: String, _ body: JSONValue, _ testID: JSONValue?) -> JSONValue {
                var object: JSONObject = ["method": .string(method), "endpoint": .string(endpoint), "body": body]
                if let testID { object["test_id"] = testID }
                return .object(object)
            }
            return [
                (
                    "it was named without its test id (recorded as shared set-up, or before the test id was hashed)",
                    input(method.uppercased(), path, normalized, .null)
                ),
                (
                    "it was named with its test id, which today's rules leave out of this endpoint's hash (a model list)",
                    input(method.uppercased(), path, normalized, testID)
                ),
                (
                    "it was named before today's normalisation of the body (floats to 5 decimals, scores, ids, project_id)",
                    input(method.uppercased(), path, body, RequestIdentity.modelListPaths.contains(path) ? nil : testID)
                ),
                (
                    "it was named with the whole URL, not only its path",
                    input(
                        method.uppercased(),
                        url,
                        normalized,
                        RequestIdentity.modelListPaths.contains(path) ? nil : testID
                    )
                ),
                (
                    "it was named with the method as recorded, not upper-cased",
                    input(method, path, normalized, RequestIdentity.modelListPaths.contains(path) ? nil : testID)
                ),
            ]
        case .http:
            let method = request["method"]?.stringValue ?? ""
            let url = request["url"]?.stringValue ?? ""
            let payload = request["payload"] ?? .null
            let requestTestID = request.index(of: "test_id") != nil ? request["test_id"] ?? .null : testID
            func input(_ testID: JSONValue, _ url: String, _ method: String, _ payload: JSONValue) -> JSONValue {
                ["test_id": testID, "url": .string(url), "method": .string(method), "payload": payload]
            }
            let normalized = HashNormalization.normalize(payload)
            let withoutQuery = url.split(separator: "?", maxSplits: 1).first.map(String.init) ?? url
            return [
                ("it was named without its test id", input(.null, url, method.uppercased(), normalized)),
                (
                    "it was named with the file's test id in place of the request's",
                    input(testID, url, method.uppercased(), normalized)
                ),
                (
                    "it was named before today's normalisation of the payload",
                    input(requestTestID, url, method.uppercased(), payload)
                ),
                (
                    "it was named with the URL's query left out",
                    input(requestTestID, withoutQuery, method.uppercased(), normalized)
                ),
                (
                    "it was named with the method as recorded, not upper-cased",
                    input(requestTestID, url, method, normalized)
                ),
            ]
        case .toolInvocation:
            let kwargs = request["kwargs"] ?? .null
            let provider = request["provider"] ?? .null
            let tool = request["tool_name"] ?? .null
            return [
                (
                    "it was named with its test id, which tool identities leave out",
                    [
                        "test_id": request["test_id"] ?? testID, "provider": provider, "tool_name": tool,
                        "kwargs": kwargs,
                    ]
                ),
                (
                    "it was named with normalised arguments, which tool identities keep as they are",
                    ["provider": provider, "tool_name": tool, "kwargs": HashNormalization.normalize(kwargs)]
                ),
            ]
        }
    }
}
