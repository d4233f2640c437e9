/// Why a recorder could not answer a request. Front ends render it in their own error shape.
public struct RecorderError: Error, Sendable, CustomStringConvertible {
    public enum Code: Sendable, Equatable {
        /// Replay mode found no recording for the request.
        case recordingNotFound
        /// The test id would lead outside the recordings root.
        case unsafeTestID
        /// A recording exists but cannot be used.
        case corruptRecording
        /// Reading or writing the store failed.
        case storage
    }

    public let code: Code
    public let message: String
    /// The request hash, for misses.
    public let hash: String?

    public var description: String { message }

    init(code: Code, message: String, hash: String? = nil) {
        self.code = code
        self.message = message
        self.hash = hash
    }

    init(store error: StoreError) {
        switch error.code {
        case .unsafeTestID: self.init(code: .unsafeTestID, message: error.message)
        case .corruptRecording: self.init(code: .corruptRecording, message: error.message)
        case .io: self.init(code: .storage, message: error.message)
        }
    }

    /// The replay-miss error: everything needed to see why, and the command that records it.
    static func notFound(request: RecorderRequest, searched: [String]) -> RecorderError {
        let hash = request.identity.hash
        let message = """
            No recording for this request (hash \(hash)). \
            Test id: \(request.testID ?? "none (fallback folder)"); request: \(request.method) \(request.url); \
            model: \(request.model ?? "none"). Searched: \(searched.joined(separator: ", ")). \
            To record it, run the test again with API_RECORDER_MODE=record-if-missing \
            (api-recorder serve --mode record-if-missing) and the upstream's API key set.
            """
        return RecorderError(code: .recordingNotFound, message: message, hash: hash)
    }
}
