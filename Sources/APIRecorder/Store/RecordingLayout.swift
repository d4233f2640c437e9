/// Where a test's recordings live, derived from its id, as in the reference.
///
/// A test id of the form `path/to/test_file.py::Suite::test[params]` (or the Swift spelling
/// `Tests/Target/File.swift::Suite/test()`) puts its recordings in `path/to/recordings/`, beside the
/// test file. Ids without `::`, and no id, use the fallback folder.
public enum RecordingLayout {
    /// The longest folder name, in UTF-8 bytes, that common file systems hold (`NAME_MAX`).
    public static let maximumFolderNameBytes = 255
    /// The longest path, in bytes, that the store writes to (`PATH_MAX` less its terminating NUL).
    public static let maximumPathBytes = 4095
    /// The longest recording file name: `models-<64 hex>-<8 hex>.json`.
    static let maximumFileNameBytes = 85

    /// The folder (relative to the recordings root) for `testID`, or `nil` for the fallback folder.
    /// - Throws: ``StoreError`` when the id's file part could leave the root (an absolute path,
    ///   a `..` component, or a NUL character) or names a folder longer than a file system allows
    ///   (``maximumFolderNameBytes``).
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
        if let long = folders.first(where: { $0.utf8.count > maximumFolderNameBytes }) {
            throw StoreError.unsafeTestID(
                testID,
                reason: "its folder name \"\(long.prefix(32))…\" is \(long.utf8.count) bytes long, "
                    + "more than the \(maximumFolderNameBytes) a file system allows"
            )
        }
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
