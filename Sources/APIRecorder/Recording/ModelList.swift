import PythonJSON

/// Model-list recordings (`/v1/models`, `/v1/openai/v1/models`, `/api/tags`).
///
/// Different servers answer the same model-list request with different models, so each answer is
/// its own file, `models-<hash>-<digest>.json`, and a replay answers with the union of all of them.
public enum ModelList {
    /// The first 8 hex of SHA-256 of the sorted, de-duplicated model ids joined with `|`.
    /// For `/api/tags` the id of an entry is its `model`; otherwise its `id`.
    /// - Throws: ``RecordingError`` when the body is not a list of models.
    public static func digest(of recording: Recording) throws(RecordingError) -> String {
        let ids = try entries(of: recording).map(\.id)
        let unique = Set(ids).sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        return String(RequestIdentity.sha256Hex(Array(unique.joined(separator: "|").utf8)).prefix(8))
    }

    /// Whether the recording's body is a list of models (and so named and merged as one).
    static func hasModels(_ recording: Recording) -> Bool {
        (try? entries(of: recording)) != nil
    }

    /// The union of several model-list recordings of one hash: one entry per id (a later file's
    /// entry wins), sorted by id, in the first recording's envelope.
    public static func union(_ recordings: [Recording]) throws(RecordingError) -> Recording? {
        guard let first = recordings.first else { return nil }
        var byID: [String: JSONValue] = [:]
        for recording in recordings {
            for entry in try entries(of: recording) { byID[entry.id] = entry.value }
        }
        let ordered = byID.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }.map { byID[$0]! }
        return first.replacingBody(try rebuildBody(of: first, entries: ordered))
    }

    /// The model entries of a recording with their ids.
    static func entries(of recording: Recording) throws(RecordingError) -> [(id: String, value: JSONValue)] {
        let idKey = recording.endpoint == "/api/tags" ? "model" : "id"
        let items: [JSONValue]
        switch ResponseNormalization.untyped(recording.body) {
        case .array(let list):
            items = list
        case .object(let object):
            guard case .array(let list)? = object["models"] else {
                throw RecordingError("the model-list body has no \"models\" list")
            }
            items = list
        default:
            throw RecordingError("the model-list body is not a list of models")
        }
        var result: [(id: String, value: JSONValue)] = []
        for item in items {
            guard let id = ResponseNormalization.untyped(item)[idKey]?.stringValue else {
                throw RecordingError("a model-list entry has no \"\(idKey)\" string")
            }
            result.append((id, item))
        }
        return result
    }

    private static func rebuildBody(of recording: Recording, entries: [JSONValue]) throws(RecordingError) -> JSONValue {
        switch recording.body {
        case .array:
            return .array(entries)
        case .object(var wrapper):
            // `{"models": [...]}`, possibly inside a typed wrapper's `__data__`.
            if case .object(var data)? = wrapper["__data__"], wrapper.index(of: "__type__") != nil {
                data["models"] = .array(entries)
                wrapper["__data__"] = .object(data)
            } else {
                wrapper["models"] = .array(entries)
            }
            return .object(wrapper)
        default:
            throw RecordingError("the model-list body is not a list of models")
        }
    }
}
