/// A failure of the recordings store, naming the file or test id involved.
///
/// Compare ``code`` with the static constants (`error.code == .corruptRecording`).
public struct StoreError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure this is.
    public struct Code: Hashable, Sendable {
        private enum Base: Hashable, Sendable {
            case unsafeTestID, corruptRecording, io
        }

        private let base: Base

        private init(_ base: Base) { self.base = base }

        /// A test id whose folder would lie outside the recordings root, or that the file system
        /// cannot hold.
        public static let unsafeTestID = Code(.unsafeTestID)
        /// A recording file that exists but cannot be read or used.
        public static let corruptRecording = Code(.corruptRecording)
        /// An I/O failure while reading or writing.
        public static let io = Code(.io)
    }

    public let code: Code
    /// The file involved, when there is one.
    public let path: String?
    public let message: String

    public var description: String { message }

    static func unsafeTestID(_ testID: String, reason: String) -> StoreError {
        StoreError(code: .unsafeTestID, path: nil, message: "test id \(quoted(testID)) is not allowed: \(reason)")
    }

    static func corrupt(_ path: String, _ reason: String) -> StoreError {
        StoreError(code: .corruptRecording, path: path, message: "\(path): corrupt recording: \(reason)")
    }

    static func io(_ path: String, _ reason: String) -> StoreError {
        StoreError(code: .io, path: path, message: "\(path): \(reason)")
    }

    /// The id in quotes, control characters escaped, and cut to 200 characters: a test id can be
    /// anything a client sends, and messages and logs must stay readable.
    private static func quoted(_ text: String) -> String {
        let escaped = text.unicodeScalars.prefix(200).map {
            $0.value < 0x20 ? "\\u{\(String($0.value, radix: 16))}" : String($0)
        }.joined()
        return "\"" + escaped + (text.unicodeScalars.count > 200 ? "…" : "") + "\""
    }
}
