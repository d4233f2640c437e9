import APIRecorder
import PythonJSON

/// A recording file read as ``RecordingStore`` reads one (`Recording(parsing:)`, with its shape
/// checks), its request identity, and the fast path of `api-recorder hash`.
///
/// For any input, nothing crashes, and:
/// - `RequestIdentity(recordingFile:)` (which builds only `test_id` and `request`) accepts every file
///   that `Recording(parsing:)` accepts and gives the same identity;
/// - the hash is 64 lowercase hex digits, and the canonical text it is computed over parses back
///   to the same canonical text;
/// - the bytes the store would write (`fileBytes()`) read back as the same recording, with the same
///   hash, and are written again byte for byte (the format's round trip).
///
/// The typed views (kind, model, chunks, exception, transcript, model-list digest and union) and
/// the miss-explaining prefix read (`parseObjectPrefix` of `test_id` and `request`) run too, for
/// crashes only.
public func fuzzRecording(_ data: UnsafeRawBufferPointer) throws(InvariantViolation) {
    let bytes = data.fuzzBytes
    // What `RecordingStore.recordedRequests(in:)` reads to explain a miss.
    if let members = try? JSONValue.parseObjectPrefix(
        bytes,
        keys: ["test_id", "request"],
        maximumDepth: Recording.maximumDepth
    ), case .object(let request)? = members["request"] {
        _ = RequestIdentity(recordedRequest: request, fileTestID: members["test_id"]?.stringValue).hash
    }
    let fast = try? RequestIdentity(recordingFile: bytes)
    let recording: Recording
    do {
        recording = try Recording(parsing: bytes)
    } catch {
        return
    }

    let identity = recording.identity
    guard let fast else {
        throw InvariantViolation("Recording(parsing:) accepted a file that RequestIdentity(recordingFile:) refused")
    }
    guard fast == identity else {
        throw InvariantViolation(
            "RequestIdentity(recordingFile:) gave \(excerpt(fast.canonicalBytes)) but the recording's identity is "
                + excerpt(identity.canonicalBytes)
        )
    }
    let hash = identity.hash
    guard hash.utf8.count == 64, hash.utf8.allSatisfy({ (48...57).contains($0) || (97...102).contains($0) }) else {
        throw InvariantViolation("the hash is not 64 lowercase hex digits: \(hash)")
    }
    let canonical = identity.canonicalBytes
    let hashInput: JSONValue
    do {
        hashInput = try JSONValue(parsing: canonical, maximumDepth: Recording.maximumDepth)
    } catch {
        throw InvariantViolation("the hash input's canonical text does not parse (\(error)): \(excerpt(canonical))")
    }
    guard hashInput.canonicalBytes() == canonical else {
        throw InvariantViolation("the hash input's canonical text is not stable: \(excerpt(canonical))")
    }

    let written = recording.fileBytes()
    let reread: Recording
    do {
        reread = try Recording(parsing: written)
    } catch {
        throw InvariantViolation("the file the store would write cannot be read back (\(error)): \(excerpt(written))")
    }
    guard reread == recording else {
        throw InvariantViolation("the file the store would write reads back as a different recording")
    }
    guard reread.hash == hash else {
        throw InvariantViolation("the file the store would write has another hash: \(reread.hash), not \(hash)")
    }
    guard reread.fileBytes() == written else {
        throw InvariantViolation("the file bytes are not stable: \(excerpt(written))")
    }

    // The typed views, for crashes only.
    _ = (recording.kind, recording.model, recording.method, recording.url, recording.endpoint, recording.testID)
    _ = (recording.chunks?.count, recording.exception, recording.status, recording.isException)
    _ = Transcript(recording)
    if let name = try? recording.fileName(hash: hash) {
        guard name.hasSuffix(".json"), name.hasPrefix(hash) || name.hasPrefix("models-\(hash)-") else {
            throw InvariantViolation("the file name \(name) does not carry the hash \(hash)")
        }
    }
    if recording.isModelList, let union = try? ModelList.union([recording, recording]) {
        _ = try? ModelList.digest(of: union)
    }
}
