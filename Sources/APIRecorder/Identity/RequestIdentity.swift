import Crypto
public import PythonJSON

/// What makes two requests "the same" for replay: the inputs of the request hash.
///
/// The hash is SHA-256 of the canonical JSON (`json.dumps(sort_keys=True)`) of a small object
/// whose shape depends on the kind. It is a recording's file name, so it must match the reference
/// recorder's to the bit.
///
/// ```swift
/// let identity = RequestIdentity.inference(
///     method: "POST", url: "https://api.openai.com/v1/v1/chat/completions",
///     body: ["model": "gpt-4o", "messages": []], testID: nil)
/// identity.hash  // 64 hex digits
/// ```
public enum RequestIdentity: Sendable, Equatable {
    /// An inference API call: method, the path of the recorded URL, the normalised body and the
    /// test id (left out for the model-list paths, which tests share).
    case inference(method: String, url: String, body: JSONValue, testID: String?)
    /// A tool call: provider, tool name and arguments, not normalised and without a test id.
    case tool(provider: JSONValue, toolName: JSONValue, kwargs: JSONValue)
    /// A plain HTTP call: test id, the full URL, method and the normalised payload.
    case http(testID: String?, url: String, method: String, payload: JSONValue)

    /// URL paths whose requests are shared across tests, so their identity has no test id.
    public static let modelListPaths: Set<String> = ["/api/tags", "/v1/models", "/v1/openai/v1/models"]

    /// The object whose canonical JSON is hashed.
    public var hashInput: JSONValue {
        switch self {
        case .inference(let method, let url, let body, let testID):
            let parsed = PythonURL(parsing: url)
            var object = JSONObject(minimumCapacity: 4)
            object.appendUnchecked(key: "method", value: .string(method.pythonUpper))
            object.appendUnchecked(key: "endpoint", value: .string(parsed.path))
            object.appendUnchecked(
                key: "body",
                value: HashNormalization.normalize(
                    body,
                    excludeStreamOptions: parsed.netloc.utf8.contains(subsequence: "bedrock".utf8)
                )
            )
            if !Self.modelListPaths.contains(parsed.path) {
                object.appendUnchecked(key: "test_id", value: testID.map(JSONValue.string) ?? .null)
            }
            return .object(object)
        case .tool(let provider, let toolName, let kwargs):
            var object = JSONObject(minimumCapacity: 3)
            object.appendUnchecked(key: "provider", value: provider)
            object.appendUnchecked(key: "tool_name", value: toolName)
            object.appendUnchecked(key: "kwargs", value: kwargs)
            return .object(object)
        case .http(let testID, let url, let method, let payload):
            var object = JSONObject(minimumCapacity: 4)
            object.appendUnchecked(key: "test_id", value: testID.map(JSONValue.string) ?? .null)
            object.appendUnchecked(key: "url", value: .string(url))
            object.appendUnchecked(key: "method", value: .string(method.pythonUpper))
            object.appendUnchecked(key: "payload", value: HashNormalization.normalize(payload))
            return .object(object)
        }
    }

    /// The canonical text that is hashed, as UTF-8.
    public var canonicalBytes: [UInt8] { hashInput.canonicalBytes() }

    /// The request hash: 64 lowercase hex digits.
    public var hash: String { Self.sha256Hex(canonicalBytes) }

    /// Lowercase hex SHA-256 of `bytes`.
    public static func sha256Hex(_ bytes: [UInt8]) -> String {
        let digest = SHA256.hash(data: bytes)
        var hex: [UInt8] = []
        hex.reserveCapacity(64)
        for byte in digest {
            hex.append(hexDigit(byte >> 4))
            hex.append(hexDigit(byte & 0xF))
        }
        return String(decoding: hex, as: UTF8.self)
    }

    private static func hexDigit(_ value: UInt8) -> UInt8 { value < 10 ? 48 + value : 87 + value }
}

extension Sequence where Element: Equatable {
    /// Whether `subsequence` occurs contiguously in the sequence.
    fileprivate func contains(subsequence: some Collection<Element>) -> Bool {
        let haystack = Array(self)
        let needle = Array(subsequence)
        guard needle.count <= haystack.count else { return needle.isEmpty }
        for start in 0...(haystack.count - needle.count)
        where haystack[start..<(start + needle.count)].elementsEqual(needle) {
            return true
        }
        return false
    }
}

extension String {
    /// `str.upper()`: the string itself when it has no lowercase ASCII letter and no non-ASCII
    /// byte (methods usually arrive upper-case), `uppercased()` otherwise.
    package var pythonUpper: String {
        let isUpper = withUTF8Buffer(self) { bytes in
            bytes.allSatisfy { $0 < 0x80 && !(UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0) }
        }
        return isUpper ? self : uppercased()
    }
}
