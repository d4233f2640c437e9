/// Where a test's recordings live, derived from its id, as in the reference.
///
/// A test id of the form `path/to/test_file.py::Suite::test[params]` (or the Swift spelling
/// `Tests/Target/File.swift::Suite/test()`) puts its recordings in `path/to/recordings/`, beside the
/// test file. Ids without `::`, and no id, use the fallback folder.
public enum RecordingLayout {
    /// The folder (relative to the recordings root) for `testID`, or `nil` for the fallback folder.
    /// - Throws: ``StoreError`` when the id's file part could leave the root: an absolute path,
    ///   a `..` component, or a NUL character.
    public static func relativeDirectory(forTestID testID: String?) throws(StoreError) -> String? {
        guard let testID, let filePart = filePart(of: testID) else { return nil }
        if filePart.contains("\0") {
            throw StoreError.unsafeTestID(testID, reason: "it contains a NUL character")
        }
        if filePart.hasPrefix("/") || filePart.hasPrefix("\\") {
            throw StoreError.unsafeTestID(testID, reason: "its file part is an absolute path")
        }
        let components = filePart.split(separator: "/", omittingEmptySubsequences: true)
            .filter { $0 != "." }
        if components.contains("..") {
            throw StoreError.unsafeTestID(testID, reason: "its file part contains '..'")
        }
        if components.contains(where: { $0.contains("\\") && $0.split(separator: "\\").contains("..") }) {
            throw StoreError.unsafeTestID(testID, reason: "its file part contains '..'")
        }
        let folders = components.dropLast()
        return folders.isEmpty ? "recordings" : folders.joined(separator: "/") + "/recordings"
    }
}

extension RecordingLayout {
    /// The part of a test id before its first `::`, or `nil` when it has none.
    static func filePart(of testID: String) -> Substring? {
        var previousWasColon = false
        for index in testID.indices {
            if testID[index] == ":" {
                if previousWasColon { return testID[..<testID.index(before: index)] }
                previousWasColon = true
            } else {
                previousWasColon = false
            }
        }
        return nil
    }
}

/// A failure of the recordings store, naming the file or test id involved.
public struct StoreError: Error, Sendable, CustomStringConvertible {
    public enum Code: Sendable, Equatable {
        /// A test id whose derived folder would lie outside the recordings root.
        case unsafeTestID
        /// A recording file that exists but cannot be read or used.
        case corruptRecording
        /// An I/O failure while reading or writing.
        case io
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

    private static func quoted(_ text: String) -> String {
        "\"" + text.unicodeScalars.map { $0.value < 0x20 ? "\\u{\(String($0.value, radix: 16))}" : String($0) }.joined()
            + "\""
    }
}
