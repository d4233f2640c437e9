/// Keeps credentials out of recordings, identities, error messages and logs.
///
/// The rule, applied to every request by every adapter:
/// - request headers are never stored, hashed or logged;
/// - a query parameter whose name is a credential name is dropped from the recorded URL and the
///   identity;
/// - in the JSON body, at any depth, a string value under a credential name is dropped from what
///   is hashed and stored.
///
/// Names are compared without case, `-` and `_` (`api_key`, `apiKey`, `API-KEY` are one name).
/// What goes upstream keeps the client's values, or, when the front end has an upstream key
/// (`--upstream-key`), carries that key in each of their places.
package struct SecretRedaction: Sendable {
    /// Credential names, normalised (``normalized(_:)``).
    package var names: Set<String> { didSet { fingerprint = names.hashValue } }
    /// Tells redactions with different names apart (``ProviderAdapter/preparationFingerprint``),
    /// computed once: hashing the names on every request would cost more than it saves.
    package private(set) var fingerprint: Int

    /// The names treated as credentials unless told otherwise: API keys, tokens, secrets,
    /// passwords, signatures.
    package static let defaultNames: Set<String> = [
        "key", "apikey", "xapikey", "xgoogapikey", "apisecret", "secretkey", "accesskey", "privatekey",
        "subscriptionkey", "ocpapimsubscriptionkey", "token", "accesstoken", "authtoken", "bearertoken",
        "refreshtoken", "idtoken", "sessiontoken", "securitytoken", "xamzsecuritytoken", "secret", "clientsecret",
        "password", "passwd", "authorization", "auth", "signature", "sig", "xamzsignature", "xamzcredential",
    ]

    package init(names: Set<String> = SecretRedaction.defaultNames) {
        self.names = names
        fingerprint = names.hashValue
    }

    /// A name as it is compared: lowercased, with `-` and `_` removed.
    package static func normalized(_ name: some StringProtocol) -> String {
        String(name.lowercased().unicodeScalars.filter { $0 != "-" && $0 != "_" })
    }

    /// Whether values under `name` are credentials.
    package func isSecret(_ name: some StringProtocol) -> Bool {
        // Most names are lowercase ASCII without `-` or `_` already: compare them as they are.
        let plain = name.utf8.allSatisfy { byte in
            byte != UInt8(ascii: "-") && byte != UInt8(ascii: "_")
                && !(UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                && byte < 0x80
        }
        return names.contains(plain ? String(name) : Self.normalized(name))
    }

    // MARK: Bodies

    /// The body to hash and store, and the bytes to send upstream: `original` untouched, or, when
    /// an upstream key is given and the body held credentials, the body with that key in their places.
    package func redact(
        body: JSONValue,
        original: [UInt8],
        upstreamKey: String?
    ) -> (recorded: JSONValue, upstream: [UInt8]) {
        // Most bodies hold no credentials: look before building a copy.
        guard containsSecrets(body) else { return (body, original) }
        var found = false
        let recorded = removingSecrets(body, found: &found)
        guard let upstreamKey else { return (recorded, original) }
        return (recorded, replacingSecrets(body, with: upstreamKey).compactBytes())
    }

    /// `value` without the string members under credential names, at any depth (tool arguments).
    package func redacting(_ value: JSONValue) -> JSONValue {
        guard containsSecrets(value) else { return value }
        var found = false
        return removingSecrets(value, found: &found)
    }

    /// Whether `value` holds a string under a credential name, at any depth.
    private func containsSecrets(_ value: JSONValue) -> Bool {
        switch value {
        case .object(let object):
            // Through the buffers: every request body is walked, and copies would retain each node.
            return object.keys.withUnsafeBufferPointer { keys in
                object.values.withUnsafeBufferPointer { values in
                    for index in keys.indices {
                        if case .string = values[index], isSecret(keys[index]) { return true }
                        if containsSecrets(values[index]) { return true }
                    }
                    return false
                }
            }
        case .array(let items):
            return items.withUnsafeBufferPointer { items in items.contains { containsSecrets($0) } }
        default:
            return false
        }
    }

    /// `value` without the string members under credential names, at any depth.
    private func removingSecrets(_ value: JSONValue, found: inout Bool) -> JSONValue {
        switch value {
        case .object(let object):
            var kept = JSONObject(minimumCapacity: object.count)
            for (key, member) in object.members {
                if case .string = member, isSecret(key) {
                    found = true
                    continue
                }
                kept.appendUnchecked(key: key, value: removingSecrets(member, found: &found))
            }
            return .object(kept)
        case .array(let items):
            return .array(items.map { removingSecrets($0, found: &found) })
        default:
            return value
        }
    }

    /// `value` with `key` in place of every string under a credential name.
    private func replacingSecrets(_ value: JSONValue, with key: String) -> JSONValue {
        switch value {
        case .object(let object):
            var replaced = JSONObject(minimumCapacity: object.count)
            for (name, member) in object.members {
                if case .string = member, isSecret(name) {
                    replaced.appendUnchecked(key: name, value: .string(key))
                } else {
                    replaced.appendUnchecked(key: name, value: replacingSecrets(member, with: key))
                }
            }
            return .object(replaced)
        case .array(let items):
            return .array(items.map { replacingSecrets($0, with: key) })
        default:
            return value
        }
    }

    // MARK: Queries

    /// The query to record and hash (credential parameters dropped; `nil` when nothing is left),
    /// and the query to send upstream (the client's, or with the upstream key in those parameters).
    package func redact(query: String?, upstreamKey: String?) -> (recorded: String?, upstream: String?) {
        guard let query, !query.isEmpty else { return (nil, query) }
        var recorded: [Substring] = []
        var upstream: [String] = []
        var found = false
        for pair in query.split(separator: "&", omittingEmptySubsequences: false) {
            let name = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            if isSecret(Self.percentDecoded(name)) {
                found = true
                upstream.append(upstreamKey.map { "\(name)=\(Self.percentEncoded($0))" } ?? String(pair))
            } else {
                recorded.append(pair)
                upstream.append(String(pair))
            }
        }
        let upstreamQuery = found ? upstream.joined(separator: "&") : query
        return (recorded.isEmpty ? nil : recorded.joined(separator: "&"), upstreamQuery)
    }

    /// A query parameter name with `%XX` escapes and `+` decoded (invalid escapes kept as they are).
    static func percentDecoded(_ text: Substring) -> String {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8)[...]
        while let byte = iterator.popFirst() {
            if byte == UInt8(ascii: "+") {
                bytes.append(UInt8(ascii: " "))
            } else if byte == UInt8(ascii: "%"), iterator.count >= 2,
                let high = hexValue(iterator[iterator.startIndex]),
                let low = hexValue(iterator[iterator.startIndex + 1])
            {
                bytes.append(high << 4 | low)
                iterator = iterator.dropFirst(2)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    /// `value` with every byte outside RFC 3986's unreserved set percent-encoded.
    static func percentEncoded(_ value: String) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var bytes: [UInt8] = []
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"):
                bytes.append(byte)
            default:
                bytes += [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 0x0F)]]
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
