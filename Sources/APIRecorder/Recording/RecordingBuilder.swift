public import PythonJSON

/// What a live call produced, before it is stored.
public enum RecordedOutcome: Sendable {
    /// A whole response object (already typed with ``ResponseNormalization/typed(_:data:requestHash:)``
    /// where the reference types it).
    case body(JSONValue)
    /// A completed stream: its chunks in order (inference) or its raw lines (plain HTTP).
    case stream([JSONValue])
    /// An error the call raised. `chunks` holds what a stream delivered before it failed.
    case exception(RecordedException, chunks: [JSONValue]? = nil)

    /// A stream the upstream cut: what it delivered, and the error the SDK (`type`) raises.
    public static func streamEndedEarly(provider: String?, type: String, reason: String, chunks: [JSONValue]) -> Self {
        .exception(
            RecordedException(
                category: "unknown",
                provider: provider,
                type: type,
                message: "The stream ended early: \(reason)",
                statusCode: nil,
                body: nil
            ),
            chunks: chunks
        )
    }
}

/// Builds recordings with exactly the keys, key order and values the reference writes, so that
/// a file recorded here is byte-identical to one the reference would write for the same exchange.
extension Recording {
    /// An inference recording.
    /// - Parameters:
    ///   - url: the client's base URL joined naively with the endpoint, as the reference records it.
    ///   - endpoint: the logical endpoint (`/v1/chat/completions`).
    ///   - providerMetadata: optional SDK facts (`{"openai_sdk_version": ...}`), written when given.
    ///   - extraResponseKeys: extra response keys (for example `chunk_offsets_ms`), which the
    ///     reference ignores on replay.
    public static func inference(
        testID: String?,
        method: String,
        url: String,
        body: JSONValue,
        endpoint: String,
        model: String,
        providerMetadata: JSONObject? = nil,
        outcome: RecordedOutcome,
        extraResponseKeys: JSONObject = JSONObject()
    ) -> Recording {
        var request = JSONObject(minimumCapacity: 7)
        request.appendUnchecked(key: "method", value: .string(method))
        request.appendUnchecked(key: "url", value: .string(url))
        request.appendUnchecked(key: "headers", value: .object(JSONObject()))
        request.appendUnchecked(key: "body", value: body)
        request.appendUnchecked(key: "endpoint", value: .string(endpoint))
        request.appendUnchecked(key: "model", value: .string(model))
        if let providerMetadata { request.appendUnchecked(key: "provider_metadata", value: .object(providerMetadata)) }
        var response = responseObject(outcome, status: nil)
        for (key, value) in extraResponseKeys.members { response[key] = value }
        return assemble(testID: testID, request: request, response: response)
    }

    /// A tool-invocation recording. `result` is stored as given (typed or plain JSON).
    public static func toolInvocation(
        testID: String?,
        provider: String,
        toolName: String,
        kwargs: JSONValue,
        outcome: RecordedOutcome
    ) -> Recording {
        var request = JSONObject(minimumCapacity: 4)
        request.appendUnchecked(key: "test_id", value: testID.map(JSONValue.string) ?? .null)
        request.appendUnchecked(key: "provider", value: .string(provider))
        request.appendUnchecked(key: "tool_name", value: .string(toolName))
        request.appendUnchecked(key: "kwargs", value: kwargs)
        return assemble(testID: testID, request: request, response: responseObject(outcome, status: nil))
    }

    /// A plain-HTTP recording. Non-streamed responses carry their `status`; streams are the list
    /// of raw SSE lines, blank separator lines included.
    public static func http(
        testID: String?,
        url: String,
        method: String,
        payload: JSONValue,
        status: Int?,
        outcome: RecordedOutcome,
        extraResponseKeys: JSONObject = JSONObject()
    ) -> Recording {
        var request = JSONObject(minimumCapacity: 4)
        request.appendUnchecked(key: "test_id", value: testID.map(JSONValue.string) ?? .null)
        request.appendUnchecked(key: "url", value: .string(url))
        request.appendUnchecked(key: "method", value: .string(method))
        request.appendUnchecked(key: "payload", value: payload)
        var response = responseObject(outcome, status: status)
        for (key, value) in extraResponseKeys.members { response[key] = value }
        return assemble(testID: testID, request: request, response: response)
    }

    private static func responseObject(_ outcome: RecordedOutcome, status: Int?) -> JSONObject {
        var response = JSONObject(minimumCapacity: 5)
        switch outcome {
        case .body(let body):
            if let status { response.appendUnchecked(key: "status", value: .integer(status)) }
            response.appendUnchecked(key: "body", value: body)
            response.appendUnchecked(key: "is_streaming", value: false)
        case .stream(let chunks):
            response.appendUnchecked(key: "body", value: .array(chunks))
            response.appendUnchecked(key: "is_streaming", value: true)
        case .exception(let exception, let chunks):
            if let status { response.appendUnchecked(key: "status", value: .integer(status)) }
            response.appendUnchecked(key: "body", value: chunks.map(JSONValue.array) ?? .null)
            response.appendUnchecked(key: "is_streaming", value: .bool(chunks != nil))
            response.appendUnchecked(key: "is_exception", value: true)
            response.appendUnchecked(key: "exception_data", value: .object(exception.json))
            response.appendUnchecked(
                key: "exception_message",
                value: (exception.exceptionMessage ?? exception.message).map(JSONValue.string) ?? .null
            )
        }
        return response
    }

    private static func assemble(testID: String?, request: JSONObject, response: JSONObject) -> Recording {
        var file = JSONObject(minimumCapacity: 4)
        file.appendUnchecked(key: "test_id", value: testID.map(JSONValue.string) ?? .null)
        file.appendUnchecked(key: "request", value: .object(request))
        file.appendUnchecked(key: "response", value: .object(response))
        file.appendUnchecked(key: "id_normalization_mapping", value: .object(JSONObject()))
        return Recording(unchecked: file)
    }
}

/// The response normalisation the reference applies when it stores a live response object.
///
/// Ids and timestamps change on every call; replacing them keeps re-recordings free of noise in
/// diffs. Only the object's own keys are touched (each stream chunk is its own object).
public enum ResponseNormalization {
    /// The value `created_at` becomes.
    public static let epochTimestamp = "1970-01-01T00:00:00.000000Z"
    static let ollamaDurations = ["total_duration", "load_duration", "prompt_eval_duration", "eval_duration"]

    /// Normalises one response object: `id` → `rec-<hash12>` and `created` → `0` unless its
    /// `object` is `model`; `created_at` → the epoch; Ollama durations → `0` when not null.
    public static func normalize(_ object: JSONObject, requestHash: String) -> JSONObject {
        var object = object
        let isModel = object["object"]?.stringValue == "model"
        if !isModel, object.index(of: "id") != nil {
            object["id"] = .string("rec-\(requestHash.prefix(12))")
        }
        if !isModel, object.index(of: "created") != nil {
            object["created"] = .integer(0)
        }
        if object.index(of: "created_at") != nil {
            object["created_at"] = .string(epochTimestamp)
        }
        for key in ollamaDurations {
            if let value = object[key], !value.isNull { object[key] = .integer(0) }
        }
        return object
    }

    /// A typed SDK object as the reference stores it: `{"__type__": type, "__data__": normalised data}`.
    public static func typed(_ typeName: String, data: JSONObject, requestHash: String) -> JSONValue {
        var wrapper = JSONObject(minimumCapacity: 2)
        wrapper.appendUnchecked(key: "__type__", value: .string(typeName))
        wrapper.appendUnchecked(key: "__data__", value: .object(normalize(data, requestHash: requestHash)))
        return .object(wrapper)
    }

    /// The data of a typed wrapper, or the value itself when it is not wrapped.
    public static func untyped(_ value: JSONValue) -> JSONValue {
        if case .object(let object) = value, object.index(of: "__type__") != nil, let data = object["__data__"] {
            return data
        }
        return value
    }
}
