import PythonJSON

/// The shape checks that make a wrong recording fail loudly instead of replaying garbage.
///
/// A file can parse and still be unusable: a hand edit, a merge, or another tool can leave a body
/// of the wrong type (`"body": 42` for a chat completion), a typed object without data
/// (`"__data__": null`), a "streaming" response whose body is not a list, or chunks that are not
/// objects. The reference recorder would fail on such files in the middle of a test; here they are
/// refused when read, with the reason, so the proxy answers `500 corrupt_recording` naming the file
/// and `verify` lists them.
extension Recording {
    /// Checks the request's and response's shape for the recording's kind.
    /// - Throws: ``RecordingError`` naming the first thing that is wrong, by its JSON path.
    public func validateShape() throws(RecordingError) {
        let request = self.request
        switch kind {
        case .inference, .http:
            guard request["method"]?.stringValue != nil, request["url"]?.stringValue != nil else {
                throw RecordingError(
                    "the \(kind == .http ? "HTTP" : "inference") request has no \"method\" or \"url\" string"
                )
            }
        case .toolInvocation:
            guard request["tool_name"]?.stringValue != nil else {
                throw RecordingError("the tool request has no \"tool_name\" string")
            }
        }

        let response = self.response
        for flag in ["is_streaming", "is_exception"] {
            if let value = response[flag], value.boolValue == nil, !value.isNull {
                throw RecordingError("response.\(flag) is \(Self.typeName(value)), not true or false")
            }
        }
        if isException {
            guard case .object? = response["exception_data"] else {
                throw RecordingError("response.is_exception is true but response.exception_data is not an object")
            }
        }
        let body = self.body
        if isStreaming {
            guard case .array(let chunks) = body else {
                throw RecordingError(
                    "response.is_streaming is true but response.body is \(Self.typeName(body)), not a list"
                )
            }
            for (index, chunk) in chunks.enumerated() {
                try Self.checkChunk(chunk, kind: kind, path: "response.body[\(index)]")
            }
            return
        }
        if isException { return }
        switch kind {
        case .inference:
            switch body {
            case .object, .string:
                try Self.checkTyped(body, path: "response.body")
            case .array(let items):
                for (index, item) in items.enumerated() {
                    try Self.checkTyped(item, path: "response.body[\(index)]")
                }
            default:
                throw RecordingError(
                    "response.body of an inference recording is \(Self.typeName(body)), not an object, list or text"
                )
            }
        case .toolInvocation, .http:
            // Tools and HTTP APIs may answer any JSON (a calculator's 42); a typed value still needs data.
            try Self.checkTyped(body, path: "response.body")
        }
    }

    /// A stream chunk: an object (inference and tool streams, MCP messages) or, for plain HTTP, a
    /// raw SSE line.
    private static func checkChunk(_ chunk: JSONValue, kind: Kind, path: String) throws(RecordingError) {
        switch chunk {
        case .object:
            try checkTyped(chunk, path: path)
        case .string where kind == .http:
            return
        default:
            let expected = kind == .http ? "a text line or an object" : "an object"
            throw RecordingError("\(path) is \(typeName(chunk)), not \(expected)")
        }
    }

    /// A typed SDK object (`{"__type__": ..., "__data__": ...}`) must carry its data.
    private static func checkTyped(_ value: JSONValue, path: String) throws(RecordingError) {
        guard case .object(let object) = value, let type = object["__type__"] else { return }
        guard type.stringValue != nil else {
            throw RecordingError("\(path).__type__ is \(typeName(type)), not a type name")
        }
        switch object["__data__"] {
        case .object?, .array?:
            return
        case let data?:
            throw RecordingError("\(path).__data__ is \(typeName(data)), not an object")
        case nil:
            throw RecordingError("\(path) is typed \(type.stringValue ?? "") but has no __data__")
        }
    }

    /// The JSON type of a value, in the words Python uses.
    static func typeName(_ value: JSONValue) -> String {
        switch value {
        case .null: return "null"
        case .bool: return "a boolean"
        case .integer, .bigInteger, .float:
            return "a number (\(String(decoding: value.compactBytes().prefix(20), as: UTF8.self)))"
        case .string: return "a string"
        case .array: return "a list"
        case .object: return "an object"
        }
    }
}
