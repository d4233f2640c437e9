/// Why a recorder could not answer a request. Front ends render it in their own error shape.
///
/// Compare ``code`` with the static constants (`error.code == .recordingNotFound`); codes are
/// structs so that new ones can be added without breaking `switch` statements.
public struct RecorderError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure this is.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Hashable, Sendable {
            case recordingNotFound = "recording_not_found"
            case unsafeTestID = "invalid_test_id"
            case corruptRecording = "corrupt_recording"
            case storage = "recording_storage_error"
        }

        private let base: Base

        private init(_ base: Base) { self.base = base }

        /// Replay mode found no recording for the request.
        public static let recordingNotFound = Code(.recordingNotFound)
        /// The test id cannot name a folder under the recordings root (it would leave the root, or
        /// the file system cannot hold its path).
        public static let unsafeTestID = Code(.unsafeTestID)
        /// A recording exists but cannot be used.
        public static let corruptRecording = Code(.corruptRecording)
        /// Reading or writing the store failed.
        public static let storage = Code(.storage)

        /// The machine-readable name front ends put in their error bodies (`recording_not_found`, ...).
        public var description: String { base.rawValue }
    }

    public let code: Code
    public let message: String
    /// The request hash, for misses.
    public let hash: String?
    /// For a miss: the nearest recording and what differs from it (`nil` when the folders searched
    /// hold no recording of that endpoint or tool).
    public let diagnosis: MissDiagnosis?

    public var description: String { message }

    init(code: Code, message: String, hash: String? = nil, diagnosis: MissDiagnosis? = nil) {
        self.code = code
        self.message = message
        self.hash = hash
        self.diagnosis = diagnosis
    }

    init(store error: StoreError) {
        if error.code == .unsafeTestID {
            self.init(code: .unsafeTestID, message: error.message)
        } else if error.code == .corruptRecording {
            self.init(code: .corruptRecording, message: error.message)
        } else {
            self.init(code: .storage, message: error.message)
        }
    }

    /// The replay-miss error: everything needed to see why, and the command that records it.
    static func notFound(request: RecorderRequest, searched: [String], diagnosis: MissDiagnosis?) -> RecorderError {
        let summary = request.summary
        let nearest = diagnosis?.text ?? "No recording of this endpoint in the folders searched."
        let message = """
            No recording for this request (hash \(request.hash)). \
            Test id: \(request.testID ?? "none (fallback folder)"); request: \(summary.method) \(summary.url); \
            model: \(summary.model ?? "none"). Searched: \(searched.joined(separator: ", ")). \
            \(nearest) \
            To record it, run the test again with API_RECORDER_MODE=record-if-missing \
            (api-recorder serve --mode record-if-missing) and the upstream's API key set.
            """
        return RecorderError(code: .recordingNotFound, message: message, hash: request.hash, diagnosis: diagnosis)
    }
}
