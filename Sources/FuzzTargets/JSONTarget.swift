import PythonJSON

/// The PythonJSON parser and writers.
///
/// For any input, the parser returns or throws (never crashes), and:
/// - `JSONValue(parsing: String)` agrees with `JSONValue(parsing: bytes)` on valid UTF-8;
/// - `JSONValue.parseObject(_:keepingOnly:)` accepts exactly the object documents the full parse
///   accepts (it validates every member it skips, by its contract) and builds the same members;
///   `parseObjectPrefix(_:keys:)` accepts every object document the full parse accepts;
/// - a parsed value written by the canonical, compact and file writers parses back to the same
///   value (keys sorted, for the canonical writer), and writing that again gives the same bytes.
public func fuzzJSON(_ data: UnsafeRawBufferPointer) throws(InvariantViolation) {
    let bytes = data.fuzzBytes
    let parsed = try? JSONValue(parsing: bytes)

    if let text = String(validating: bytes, as: UTF8.self) {
        let fromText = try? JSONValue(parsing: text)
        guard fromText == parsed else {
            throw InvariantViolation(
                "JSONValue(parsing: String) \(outcome(fromText)) but JSONValue(parsing: bytes) \(outcome(parsed))"
            )
        }
    }

    let object = parsed?.objectValue
    let everyKey = try? JSONValue.parseObject(bytes, keepingOnly: Set(object?.keys ?? []))
    guard everyKey == object else {
        throw InvariantViolation(
            "parseObject(keepingOnly: every key) gave \(describe(everyKey.map(JSONValue.object))) "
                + "but the full parse \(outcome(parsed))"
        )
    }
    let noKey = try? JSONValue.parseObject(bytes, keepingOnly: [])
    guard (noKey != nil) == (object != nil), noKey?.isEmpty ?? true else {
        throw InvariantViolation(
            "parseObject(keepingOnly: []) gave \(describe(noKey.map(JSONValue.object))) "
                + "but the full parse \(outcome(parsed))"
        )
    }
    let prefix = try? JSONValue.parseObjectPrefix(bytes, keys: Set(object?.keys.prefix(2) ?? []))
    if object != nil, prefix == nil {
        throw InvariantViolation("parseObjectPrefix refused an object document that the full parse accepts")
    }

    guard let value = parsed else { return }
    try checkRoundTrip(value, writer: "canonical", expected: sortingKeys(value)) { $0.canonicalBytes() }
    try checkRoundTrip(value, writer: "compact", expected: value) { $0.compactBytes() }
    try checkRoundTrip(value, writer: "file", expected: value) { $0.fileBytes() }
}

/// Writes `value`, parses the text back and writes that again: the value read must be
/// `expected`, and the second text must be the first.
private func checkRoundTrip(
    _ value: JSONValue,
    writer: String,
    expected: JSONValue,
    _ write: (JSONValue) -> [UInt8]
) throws(InvariantViolation) {
    let text = write(value)
    let again: JSONValue
    do {
        again = try JSONValue(parsing: text)
    } catch {
        throw InvariantViolation("the \(writer) writer's output does not parse (\(error)): \(excerpt(text))")
    }
    guard again == expected else {
        throw InvariantViolation(
            "the \(writer) writer's output parses to a different value: \(excerpt(text)) "
                + "reads back as \(excerpt(again.compactBytes()))"
        )
    }
    let rewritten = write(again)
    guard rewritten == text else {
        throw InvariantViolation(
            "the \(writer) writer is not stable: \(excerpt(text)) is written again as \(excerpt(rewritten))"
        )
    }
}

/// `value` with every object's keys in code-point (UTF-8 byte) order, as `sort_keys=True` writes them.
func sortingKeys(_ value: JSONValue) -> JSONValue {
    switch value {
    case .array(let elements):
        return .array(elements.map(sortingKeys))
    case .object(let object):
        var sorted = JSONObject(minimumCapacity: object.count)
        let members = object.members.sorted { $0.0.utf8.lexicographicallyPrecedes($1.0.utf8) }
        for (key, member) in members { sorted.appendUnchecked(key: key, value: sortingKeys(member)) }
        return .object(sorted)
    default:
        return value
    }
}

private func outcome(_ value: JSONValue?) -> String {
    value.map { "gave \(excerpt($0.compactBytes()))" } ?? "threw"
}

private func describe(_ value: JSONValue?) -> String {
    value.map { excerpt($0.compactBytes()) } ?? "an error"
}
