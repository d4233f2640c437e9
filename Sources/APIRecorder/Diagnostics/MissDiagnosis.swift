public import PythonJSON

/// Why a replay missed, as far as the recordings can tell: the nearest recording of the same
/// endpoint (or tool) in the folders that were searched, what differs from it, and the known
/// causes of drift that apply.
public struct MissDiagnosis: Sendable, Equatable {
    /// The nearest recording, relative to the recordings root.
    public var file: String
    /// Its test id.
    public var testID: String?
    /// What differs between its request and this one, by JSON path over the request body.
    public var differences: [JSONDifference]
    /// Whether there were more differences than are listed.
    public var moreDifferences: Bool
    /// Known causes of drift, in words, when they apply.
    public var hints: [String]

    /// The `nearest` member of a miss's error object.
    public var json: JSONValue {
        var object = JSONObject()
        object["file"] = .string(file)
        object["test_id"] = testID.map(JSONValue.string) ?? .null
        object["differences"] = .array(
            differences.map { difference in
                var entry = JSONObject()
                entry["path"] = .string(difference.path)
                if let recorded = difference.recorded { entry["recorded"] = JSONDifference.shortened(recorded) }
                if let requested = difference.requested { entry["requested"] = JSONDifference.shortened(requested) }
                return .object(entry)
            }
        )
        if moreDifferences { object["more_differences"] = true }
        object["hints"] = .array(hints.map(JSONValue.string))
        return .object(object)
    }

    /// A diagnosis read back from its ``json``.
    public init?(json value: JSONValue) {
        guard let file = value["file"]?.stringValue else { return nil }
        self.file = file
        self.testID = value["test_id"]?.stringValue
        self.differences = (value["differences"]?.arrayValue ?? []).compactMap { entry in
            entry["path"]?.stringValue.map {
                JSONDifference(path: $0, recorded: entry["recorded"], requested: entry["requested"])
            }
        }
        self.moreDifferences = value["more_differences"]?.boolValue ?? false
        self.hints = value["hints"]?.arrayValue?.compactMap(\.stringValue) ?? []
    }

    init(file: String, testID: String?, differences: [JSONDifference], moreDifferences: Bool, hints: [String]) {
        self.file = file
        self.testID = testID
        self.differences = differences
        self.moreDifferences = moreDifferences
        self.hints = hints
    }

    /// The diagnosis in words, for messages, logs and test failures.
    public var text: String {
        var lines = ["Nearest recording: \(file) (test id \(testID ?? "none"))."]
        if differences.isEmpty {
            lines.append("Its request is the same.")
        } else {
            let shown = differences.prefix(10).map { difference -> String in
                "\(difference.path.isEmpty ? "(the whole body)" : difference.path): recorded \(Self.describe(difference.recorded)), "
                    + "requested \(Self.describe(difference.requested))"
            }
            let more = differences.count > 10 || moreDifferences ? "; and more" : ""
            lines.append("Differences: " + shown.joined(separator: "; ") + more + ".")
        }
        for hint in hints { lines.append("Hint: \(hint)") }
        return lines.joined(separator: " ")
    }

    static func describe(_ value: JSONValue?) -> String {
        guard let value else { return "(absent)" }
        return String(decoding: JSONDifference.shortened(value).compactBytes(), as: UTF8.self)
    }
}

/// The known causes of a request drifting from its recording between runs.
enum DriftHints {
    /// The hints that apply to `differences` (over the request body) and the two test ids.
    static func hints(
        for differences: [JSONDifference],
        recordedTestID: String?,
        requestedTestID: String?,
        testIDIsHashed: Bool
    ) -> [String] {
        var hints: [String] = []
        func add(_ hint: String) { if !hints.contains(hint) { hints.append(hint) } }

        if testIDIsHashed, recordedTestID != requestedTestID {
            add(
                "the same request was recorded under test id \(recordedTestID ?? "none") (a renamed or parametrised test?): "
                    + "the test id is part of the hash; record again under the new id, or keep the old name"
            )
        }
        for difference in differences {
            let key = lastKey(of: difference.path)
            let (recorded, requested) = (difference.recorded, difference.requested)
            let toolCallPrefixes = ["call_", "toolu_", "fc_"]
            let looksLikeToolCall =
                difference.path.contains("tool") || difference.path.contains("call") || key != "id"
                || toolCallPrefixes.contains { (recorded?.stringValue ?? "").hasPrefix($0) }
            if ["id", "tool_call_id", "call_id", "tool_use_id"].contains(key), isIDLike(recorded), isIDLike(requested),
                looksLikeToolCall
            {
                add(
                    "a tool-call id differs (\(difference.path)): ids an upstream issues change on every run; "
                        + "record the whole tool loop through api-recorder, which makes them deterministic"
                )
            }
            if ["max_tokens", "max_completion_tokens", "max_output_tokens"].contains(key),
                isNullAbsentOrZero(recorded), isNullAbsentOrZero(requested)
            {
                add("\(key) is \(absentNullOrZero(recorded)) in the recording but \(absentNullOrZero(requested)) now")
            }
            if key == "tool_choice", recorded == nil || requested == nil,
                (recorded ?? requested)?.stringValue == "auto"
            {
                add("tool_choice \"auto\" and an absent tool_choice mean the same to the API but not to the hash")
            }
            if key == "content", isText(recorded) != isText(requested), textOf(recorded) != nil,
                textOf(recorded) == textOf(requested)
            {
                add(
                    "content is a string on one side and a list of text parts on the other, with the same text "
                        + "(\(difference.path))"
                )
            }
            if key == "model", let old = recorded?.stringValue, let new = requested?.stringValue,
                undated(old) == undated(new)
            {
                add("the model name differs only by its date suffix (\(old) vs \(new))")
            }
            if let a = number(recorded), let b = number(requested), a != b, abs(a - b) <= 1e-4 * max(1, abs(a)) {
                add(
                    "a float differs only in its last decimals (\(difference.path)): the hash keeps 5 decimals, "
                        + "so noise at the 5th changes it"
                )
            }
            if key == "stream_options" || difference.path.hasPrefix("stream_options") {
                add("stream_options differs: it is part of the hash (except for Bedrock), so set it as when recording")
            }
        }
        return hints
    }

    private static func lastKey(of path: String) -> String {
        var end = path.endIndex
        while path[..<end].hasSuffix("]"), let open = path[..<end].lastIndex(of: "[") { end = open }
        let key = path[..<end]
        guard let dot = key.lastIndex(of: ".") else { return String(key) }
        return String(key[key.index(after: dot)...])
    }

    private static func isIDLike(_ value: JSONValue?) -> Bool {
        guard let text = value?.stringValue else { return false }
        return text.count >= 6 && !text.contains(" ")
    }

    private static func isNullAbsentOrZero(_ value: JSONValue?) -> Bool {
        guard let value else { return true }
        return value.isNull || value.intValue == 0
    }

    private static func absentNullOrZero(_ value: JSONValue?) -> String {
        guard let value else { return "absent" }
        return value.isNull ? "null" : String(decoding: value.compactBytes(), as: UTF8.self)
    }

    private static func isText(_ value: JSONValue?) -> Bool { value?.stringValue != nil }

    /// The text of a content value: a string, or a list of only text parts, joined.
    private static func textOf(_ value: JSONValue?) -> String? {
        if let text = value?.stringValue { return text }
        guard let parts = value?.arrayValue, !parts.isEmpty else { return nil }
        var text = ""
        for part in parts {
            guard part["type"]?.stringValue == "text", let piece = part["text"]?.stringValue else { return nil }
            text += piece
        }
        return text
    }

    /// A model name without a date suffix (`-2024-08-06`, `-20240806`, `@20240620`).
    private static func undated(_ model: String) -> String {
        var bytes = Array(model.utf8)
        // -YYYY-MM-DD
        if bytes.count > 11, bytes[bytes.count - 11] == UInt8(ascii: "-"), bytes[bytes.count - 6] == UInt8(ascii: "-"),
            bytes[bytes.count - 3] == UInt8(ascii: "-"),
            bytes[(bytes.count - 10)...].allSatisfy({ $0 == UInt8(ascii: "-") || (48...57).contains($0) })
        {
            bytes.removeLast(11)
        } else if bytes.count > 9,
            bytes[bytes.count - 9] == UInt8(ascii: "-") || bytes[bytes.count - 9] == UInt8(ascii: "@"),
            bytes[(bytes.count - 8)...].allSatisfy({ (48...57).contains($0) })
        {
            bytes.removeLast(9)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func number(_ value: JSONValue?) -> Double? {
        switch value {
        case .float(let number)?: return number
        default: return nil
        }
    }
}
