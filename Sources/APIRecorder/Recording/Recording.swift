public import PythonJSON

/// One recorded exchange: the contents of one recording file.
///
/// The model is a thin typed view over the file's JSON object, so that keys this version does
/// not know (from newer reference recorders, or added by hand) survive a rewrite unchanged.
public struct Recording: Sendable, Equatable {
    /// The three kinds of request the format knows, told apart by the request's keys.
    public enum Kind: String, Sendable {
        /// An inference API call (`method`, `url`, `headers`, `body`, `endpoint`, `model`).
        case inference
        /// A tool call (`provider`, `tool_name`, `kwargs`).
        case toolInvocation = "tool"
        /// A plain HTTP call (`url`, `method`, `payload`).
        case http
    }

    /// The whole file, in its key order.
    public private(set) var json: JSONObject

    /// The deepest nesting a recording file may have: a request or response accepted at the
    /// parser's limit, inside the file's own envelope (`response.body.__data__...`), so that
    /// whatever is written can be read back.
    public static let maximumDepth = JSONValue.maximumDepth + 8

    /// Wraps a parsed file, checking its shape: an object with `request` and `response` objects,
    /// and a response whose body has the form its flags and kind promise (``validateShape()``).
    /// - Throws: ``RecordingError`` naming what is wrong.
    public init(json value: JSONValue) throws(RecordingError) {
        guard case .object(let object) = value else { throw RecordingError("the file is not a JSON object") }
        guard case .object? = object["request"] else { throw RecordingError("no \"request\" object") }
        guard case .object? = object["response"] else { throw RecordingError("no \"response\" object") }
        self.json = object
        try validateShape()
    }

    /// Wraps a file built by this module's builders, which are right by construction.
    init(unchecked object: JSONObject) {
        self.json = object
    }

    /// Parses a recording file's bytes.
    /// - Throws: ``RecordingError`` for invalid JSON (with the byte offset) or a wrong shape.
    public init(parsing bytes: some Collection<UInt8>) throws(RecordingError) {
        let value: JSONValue
        do {
            value = try JSONValue(parsing: bytes, maximumDepth: Self.maximumDepth)
        } catch {
            throw RecordingError(error.description)
        }
        try self.init(json: value)
    }

    // MARK: Parts

    /// The top-level test id (`null` for set-up and shared recordings).
    public var testID: String? { json["test_id"]?.stringValue }

    public var request: JSONObject { json["request"]?.objectValue ?? JSONObject() }
    public var response: JSONObject { json["response"]?.objectValue ?? JSONObject() }

    public var kind: Kind { Kind(request: request) }

    public var method: String? { request["method"]?.stringValue }
    public var url: String? { request["url"]?.stringValue }
    /// The logical endpoint of an inference request (`/v1/chat/completions`).
    public var endpoint: String? { request["endpoint"]?.stringValue }

    /// The model named by the request: the inference `model` key, else the body's or payload's.
    public var model: String? {
        if let model = request["model"]?.stringValue, !model.isEmpty { return model }
        return (request["body"] ?? request["payload"])?["model"]?.stringValue
    }

    /// The response body: an object, a list of stream chunks or lines, or `null`.
    public var body: JSONValue { response["body"] ?? .null }
    public var isStreaming: Bool { response["is_streaming"]?.boolValue ?? false }
    /// The stream's chunks (inference) or raw SSE lines (plain HTTP), when streaming.
    public var chunks: [JSONValue]? { isStreaming ? body.arrayValue : nil }
    public var isException: Bool { response["is_exception"]?.boolValue ?? false }
    /// The recorded error of a call that raised, if any.
    public var exception: RecordedException? {
        guard isException, case .object(let data)? = response["exception_data"] else { return nil }
        return RecordedException(json: data, message: response["exception_message"]?.stringValue)
    }
    /// The HTTP status of a plain-HTTP recording.
    public var status: Int? { response["status"]?.intValue }

    /// Whether this is a model-list recording (`models-<hash>-<digest>.json`), which tests share
    /// and which replay as the union of every file with the same hash.
    public var isModelList: Bool {
        guard kind == .inference, let endpoint else { return false }
        return RequestIdentity.modelListPaths.contains(endpoint)
    }

    // MARK: Identity and file

    /// The identity this recording's request implies.
    public var identity: RequestIdentity {
        RequestIdentity(recordedRequest: request, fileTestID: testID)
    }

    /// The request hash, which is also the file's name.
    public var hash: String { identity.hash }

    /// The file name the content implies: `<hash>.json`, or `models-<hash>-<digest>.json`.
    /// - Throws: ``RecordingError`` when a model-list body has no model ids to digest.
    public func fileName() throws(RecordingError) -> String {
        try fileName(hash: hash)
    }

    /// The file name for a known hash (saves hashing twice).
    public func fileName(hash: String) throws(RecordingError) -> String {
        // A model-list request answered with something else (an upstream error, a method that
        // lists nothing) is an ordinary recording: there are no models to digest or merge.
        guard isModelList, ModelList.hasModels(self) else { return "\(hash).json" }
        return "models-\(hash)-\(try ModelList.digest(of: self)).json"
    }

    /// The file's exact bytes, as the reference writes them.
    public func fileBytes() -> [UInt8] { JSONValue.object(json).fileBytes() }

    /// Returns a copy with the response body replaced (used by the model-list union).
    public func replacingBody(_ body: JSONValue) -> Recording {
        var copy = self
        var response = copy.response
        response["body"] = body
        copy.json["response"] = .object(response)
        return copy
    }
}

extension Recording.Kind {
    /// The kind a recorded request's keys imply.
    init(request: JSONObject) {
        if request.index(of: "tool_name") != nil {
            self = .toolInvocation
        } else if request.index(of: "payload") != nil {
            self = .http
        } else {
            self = .inference
        }
    }
}

extension RequestIdentity {
    /// The identity a recorded request implies. `fileTestID` is the file's top-level `test_id`;
    /// a plain-HTTP request's own `test_id` takes precedence, as the reference hashes that one.
    public init(recordedRequest request: JSONObject, fileTestID: String?) {
        switch Recording.Kind(request: request) {
        case .inference:
            self = .inference(
                method: request["method"]?.stringValue ?? "",
                url: request["url"]?.stringValue ?? "",
                body: request["body"] ?? .null,
                testID: fileTestID
            )
        case .toolInvocation:
            self = .tool(
                provider: request["provider"] ?? .null,
                toolName: request["tool_name"] ?? .null,
                kwargs: request["kwargs"] ?? .null
            )
        case .http:
            let testID = request.index(of: "test_id") != nil ? request["test_id"]?.stringValue : fileTestID
            self = .http(
                testID: testID,
                url: request["url"]?.stringValue ?? "",
                method: request["method"]?.stringValue ?? "",
                payload: request["payload"] ?? .null
            )
        }
    }

    /// The identity of a recording file, read straight from its bytes: only `test_id` and
    /// `request` are built, the rest of the file (the response, often most of it) is validated
    /// but not materialised. This is what `api-recorder hash` and index builders use.
    /// - Throws: ``RecordingError`` for invalid JSON anywhere in the file, or a missing request.
    public init(recordingFile bytes: some Collection<UInt8>) throws(RecordingError) {
        let members: JSONObject
        do {
            members = try JSONValue.parseObject(
                bytes,
                keepingOnly: ["test_id", "request"],
                maximumDepth: Recording.maximumDepth
            )
        } catch {
            throw RecordingError(error.description)
        }
        guard case .object(let request)? = members["request"] else { throw RecordingError("no \"request\" object") }
        self.init(recordedRequest: request, fileTestID: members["test_id"]?.stringValue)
    }
}

/// A recording file that cannot be used, and why.
public struct RecordingError: Error, Sendable, Equatable, CustomStringConvertible {
    public let reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}

/// The error a recorded call raised, in the reference's `exception_data` shape.
public struct RecordedException: Sendable, Equatable {
    /// `provider_sdk` for an API error, or `builtin`, `unknown`, or a server's own category.
    public var category: String?
    /// The provider whose SDK raised it (`openai`, `ollama`, ...).
    public var provider: String?
    /// The SDK's error class name (`BadRequestError`, `RateLimitError`, ...).
    public var type: String?
    public var message: String?
    public var statusCode: Int?
    /// The provider's error object.
    public var body: JSONValue?
    /// The top-level `exception_message`.
    public var exceptionMessage: String?

    public init(
        category: String? = "provider_sdk",
        provider: String?,
        type: String?,
        message: String?,
        statusCode: Int?,
        body: JSONValue?,
        exceptionMessage: String? = nil
    ) {
        self.category = category
        self.provider = provider
        self.type = type
        self.message = message
        self.statusCode = statusCode
        self.body = body
        self.exceptionMessage = exceptionMessage ?? message
    }

    init(json: JSONObject, message: String?) {
        category = json["category"]?.stringValue
        provider = json["provider"]?.stringValue
        type = json["type"]?.stringValue
        self.message = json["message"]?.stringValue
        statusCode = json["status_code"]?.intValue
        body = json["body"]
        exceptionMessage = message
    }

    /// The `exception_data` object, keys in the reference's order.
    public var json: JSONObject {
        var object = JSONObject(minimumCapacity: 6)
        object.appendUnchecked(key: "category", value: category.map(JSONValue.string) ?? .null)
        object.appendUnchecked(key: "provider", value: provider.map(JSONValue.string) ?? .null)
        object.appendUnchecked(key: "type", value: type.map(JSONValue.string) ?? .null)
        object.appendUnchecked(key: "message", value: message.map(JSONValue.string) ?? .null)
        object.appendUnchecked(key: "status_code", value: statusCode.map(JSONValue.integer) ?? .null)
        object.appendUnchecked(key: "body", value: body ?? .null)
        return object
    }
}
