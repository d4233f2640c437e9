/// The two spellings of Gemini objects: the REST API's camelCase JSON, which is what travels, and
/// the `google-genai` SDK's snake_case field names, which is what the reference records (it records
/// the SDK call, not the HTTP exchange).
///
/// Only the API's own field names change case. User data keeps its keys: function-call arguments
/// and results, raw JSON schemas, labels, and the property names of a schema's `properties`.
enum GeminiKeyCase {
    /// Fields whose values are user data, copied as they are (both spellings listed).
    static let opaqueFields: Set<String> = [
        "args", "response", "parametersJsonSchema", "parameters_json_schema", "responseJsonSchema",
        "response_json_schema", "labels", "default", "example", "partialArgs", "partial_args",
    ]
    /// Fields that map user names to schemas: the names are kept, the schemas converted.
    static let namedSchemaFields: Set<String> = ["properties", "defs", "$defs"]

    /// `finishReason` -> `finish_reason`.
    static func snake(key: String) -> String {
        guard key.utf8.contains(where: { $0 >= 0x41 && $0 <= 0x5A }) else { return key }
        var result = ""
        result.reserveCapacity(key.utf8.count + 4)
        for scalar in key.unicodeScalars {
            if scalar.value >= 0x41, scalar.value <= 0x5A {
                result.append("_")
                result.unicodeScalars.append(Unicode.Scalar(UInt8(scalar.value + 0x20)))
            } else {
                result.unicodeScalars.append(scalar)
            }
        }
        return result
    }

    /// `finish_reason` -> `finishReason`.
    static func camel(key: String) -> String {
        guard key.utf8.dropFirst().contains(0x5F) else { return key }
        var result = ""
        var upperNext = false
        for (index, scalar) in key.unicodeScalars.enumerated() {
            if scalar == "_", index > 0 {
                upperNext = true
            } else if upperNext, scalar.value >= 0x61, scalar.value <= 0x7A {
                result.unicodeScalars.append(Unicode.Scalar(UInt8(scalar.value - 0x20)))
                upperNext = false
            } else {
                if upperNext { result.append("_") }
                result.unicodeScalars.append(scalar)
                upperNext = false
            }
        }
        if upperNext { result.append("_") }
        return result
    }

    /// The value with the API's field names in snake_case.
    static func snake(_ value: JSONValue) -> JSONValue { converted(value, key: snake(key:)) }

    /// The value with the API's field names in camelCase.
    static func camel(_ value: JSONValue) -> JSONValue { converted(value, key: camel(key:)) }

    private static func converted(_ value: JSONValue, key rename: (String) -> String) -> JSONValue {
        switch value {
        case .object(let object):
            var result = JSONObject(minimumCapacity: object.count)
            for (key, member) in object.members {
                let renamed = rename(key)
                if opaqueFields.contains(key) {
                    result[renamed] = member
                } else if namedSchemaFields.contains(key), case .object(let named) = member {
                    var schemas = JSONObject(minimumCapacity: named.count)
                    for (name, schema) in named.members { schemas[name] = converted(schema, key: rename) }
                    result[renamed] = .object(schemas)
                } else {
                    result[renamed] = converted(member, key: rename)
                }
            }
            return .object(result)
        case .array(let items):
            return .array(items.map { converted($0, key: rename) })
        default:
            return value
        }
    }
}
