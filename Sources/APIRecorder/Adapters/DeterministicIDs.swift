import Synchronization

/// Ids an upstream issues and a client sends back in its next request (tool-call ids, output
/// item ids) change on every call, so a tool loop re-recorded against a real upstream would
/// otherwise hash its second request differently each time and write new files. When recording,
/// such ids are replaced by ids derived from the request hash, in the recording and in what the
/// client receives; ``IssuedIDs`` remembers the pairs, so that the upstream is sent back the ids it
/// issued.

/// Deterministic chat-completion tool-call ids: `call_` + the first 24 hex of
/// SHA-256("<request hash>:<choice index>:<tool-call index>").
package enum DeterministicToolCallIDs {
    package static func id(requestHash: String, choice: Int, toolCall: Int) -> String {
        "call_" + RequestIdentity.sha256Hex(Array("\(requestHash):\(choice):\(toolCall)".utf8)).prefix(24)
    }

    /// Rewrites the ids of a chat completion or chunk (non-null ids only: stream deltas carry the
    /// id on a tool call's first delta), remembering each pair in `issued`.
    static func apply(to object: JSONObject, requestHash: String, issued: IssuedIDs?) -> JSONObject {
        guard case .array(var choices)? = object["choices"] else { return object }
        var changed = false
        for (position, choice) in choices.enumerated() {
            guard case .object(var choiceObject) = choice else { continue }
            let choiceIndex = choiceObject["index"]?.intValue ?? position
            for key in ["delta", "message"] {
                guard case .object(var message)? = choiceObject[key], case .array(var calls)? = message["tool_calls"]
                else {
                    continue
                }
                for (callPosition, call) in calls.enumerated() {
                    guard case .object(var callObject) = call, case .string(let original)? = callObject["id"] else {
                        continue
                    }
                    let callIndex = callObject["index"]?.intValue ?? callPosition
                    let deterministic = id(requestHash: requestHash, choice: choiceIndex, toolCall: callIndex)
                    issued?.remember(deterministic, issued: original)
                    callObject["id"] = .string(deterministic)
                    calls[callPosition] = .object(callObject)
                    changed = true
                }
                message["tool_calls"] = .array(calls)
                choiceObject[key] = .object(message)
            }
            choices[position] = .object(choiceObject)
        }
        guard changed else { return object }
        var result = object
        result["choices"] = .array(choices)
        return result
    }
}

/// The deterministic ids of one exchange: the n-th distinct id with a given prefix that the
/// upstream issued becomes `<prefix>` + the first 24 hex of SHA-256("<request hash>:<prefix>:<n>"),
/// the same each time the same request is recorded (an upstream lists items in the same order).
package struct DeterministicIDs: Sendable {
    /// Which ids are rewritten.
    package enum Rule: Sendable {
        /// The Responses API: output item ids (`fc_...`, `msg_...`, `rs_...`) and `call_id`s,
        /// wherever they appear (`id`, `item_id`, `call_id`); the response's own `resp_...` id is
        /// the upstream's handle on its state and stays.
        case responses
        /// Anthropic Messages: the ids of `tool_use` and `server_tool_use` blocks (`toolu_...`, or
        /// whatever an Anthropic-compatible server issues), which come back in `tool_use_id`.
        case anthropic
    }

    let rule: Rule
    let requestHash: String
    let issued: IssuedIDs?
    private var assigned: [String: String] = [:]
    private var counts: [String: Int] = [:]

    package init(_ rule: Rule, requestHash: String, issued: IssuedIDs?) {
        self.rule = rule
        self.requestHash = requestHash
        self.issued = issued
    }

    /// The deterministic id for an issued one, assigned on first sight.
    mutating func id(for original: String, prefix: String) -> String {
        if let known = assigned[original] { return known }
        let number = counts[prefix, default: 0]
        counts[prefix] = number + 1
        let deterministic =
            prefix + RequestIdentity.sha256Hex(Array("\(requestHash):\(prefix):\(number)".utf8)).prefix(24)
        assigned[original] = deterministic
        issued?.remember(deterministic, issued: original)
        return deterministic
    }

    /// The prefix of the id this rule rewrites under `key` of `object`, or `nil`.
    func prefix(of value: String, key: String, in object: JSONObject) -> String? {
        switch rule {
        case .responses:
            guard ["id", "item_id", "call_id"].contains(key), let underscore = value.firstIndex(of: "_"),
                underscore != value.startIndex
            else { return nil }
            let prefix = value[...underscore]
            guard prefix != "resp_", prefix.dropLast().allSatisfy({ $0.isLetter && $0.isASCII }) else { return nil }
            return String(prefix)
        case .anthropic:
            guard key == "id" else { return nil }
            switch object["type"]?.stringValue {
            case "tool_use": return "toolu_"
            case "server_tool_use": return "srvtoolu_"
            default: return nil
            }
        }
    }

    /// `value` with this rule's ids replaced, at any depth.
    package mutating func rewrite(_ value: JSONValue) -> JSONValue {
        switch value {
        case .object(let object):
            var result = JSONObject(minimumCapacity: object.count)
            for (key, member) in object.members {
                if case .string(let text) = member, let prefix = prefix(of: text, key: key, in: object) {
                    result.appendUnchecked(key: key, value: .string(id(for: text, prefix: prefix)))
                } else {
                    result.appendUnchecked(key: key, value: rewrite(member))
                }
            }
            return .object(result)
        case .array(let items):
            return .array(items.map { rewrite($0) })
        default:
            return value
        }
    }

    /// JSON text (an SSE `data:` line) with this rule's ids replaced where they stand, every
    /// other byte as it came.
    package mutating func rewrite(text: String) -> String {
        guard text.contains("\"id\""), let value = try? JSONValue(parsing: text) else { return text }
        var originals: [String] = []
        collect(value, into: &originals)
        var result = text
        for original in originals {
            let prefix = assignedPrefix(for: original, in: value)
            result = result.replacingOccurrences(
                of: "\"\(original)\"",
                with: "\"\(id(for: original, prefix: prefix))\""
            )
        }
        return result
    }

    /// The ids this rule rewrites in `value`, in order.
    private func collect(_ value: JSONValue, into ids: inout [String]) {
        switch value {
        case .object(let object):
            for (key, member) in object.members {
                if case .string(let text) = member, prefix(of: text, key: key, in: object) != nil {
                    if !ids.contains(text) { ids.append(text) }
                } else {
                    collect(member, into: &ids)
                }
            }
        case .array(let items):
            for item in items { collect(item, into: &ids) }
        default:
            break
        }
    }

    /// The prefix for `original` where it stands in `value`.
    private func assignedPrefix(for original: String, in value: JSONValue) -> String {
        switch value {
        case .object(let object):
            for (key, member) in object.members {
                if member.stringValue == original, let prefix = prefix(of: original, key: key, in: object) {
                    return prefix
                }
                let found = assignedPrefix(for: original, in: member)
                if !found.isEmpty { return found }
            }
            return ""
        case .array(let items):
            for item in items {
                let found = assignedPrefix(for: original, in: item)
                if !found.isEmpty { return found }
            }
            return ""
        default:
            return ""
        }
    }
}

/// The session's deterministic ids and the ids the upstream issued for them, so that a request
/// sending a deterministic id back reaches the upstream with the one it knows.
package final class IssuedIDs: Sendable {
    private let table = Mutex<[String: String]>([:])

    package init() {}

    func remember(_ deterministic: String, issued: String) {
        guard deterministic != issued else { return }
        table.withLock { $0[deterministic] = issued }
    }

    /// `body` with every quoted deterministic id this session handed out replaced by the id the
    /// upstream issued; `body` itself when it holds none. One pass over the body's JSON strings.
    package func restore(in body: [UInt8]) -> [UInt8] {
        let known = table.withLock { $0 }
        guard !known.isEmpty, !body.isEmpty else { return body }
        var result: [UInt8] = []
        var copiedUpTo = 0
        var index = 0
        while index < body.count {
            guard body[index] == UInt8(ascii: "\"") else {
                index += 1
                continue
            }
            // A JSON string from here: find its end, stepping over escapes.
            var end = index + 1
            var escaped = false
            while end < body.count {
                if escaped {
                    escaped = false
                } else if body[end] == UInt8(ascii: "\\") {
                    escaped = true
                } else if body[end] == UInt8(ascii: "\"") {
                    break
                }
                end += 1
            }
            guard end < body.count else { break }
            let length = end - index - 1
            if length > 0, length <= 64, let issued = known[String(decoding: body[(index + 1)..<end], as: UTF8.self)] {
                result += body[copiedUpTo...index]
                result += Array(issued.utf8)
                copiedUpTo = end
            }
            index = end + 1
        }
        guard copiedUpTo > 0 else { return body }
        result += body[copiedUpTo...]
        return result
    }
}

extension String {
    /// `self` with every occurrence of `target` replaced by `replacement`.
    fileprivate func replacingOccurrences(of target: String, with replacement: String) -> String {
        var result = ""
        var rest = Substring(self)
        while let range = rest.firstRange(of: target) {
            result += rest[..<range.lowerBound] + replacement
            rest = rest[range.upperBound...]
        }
        return result + rest
    }
}
