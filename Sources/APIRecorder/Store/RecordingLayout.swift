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
        // On UTF-8 bytes, as the file system reads the path: `Character`s would join a `/` or a
        // `.` with a combining mark that follows it into one grapheme (`"/\u{301}"` is not `"/"` to
        // `hasPrefix` or `split`), and let `../\u{301}x` through as a folder that leaves the root.
        let bytes = Array(filePart.utf8)
        if bytes.contains(0) {
            throw StoreError.unsafeTestID(testID, reason: "it contains a NUL character")
        }
        if bytes.first == slash || bytes.first == backslash {
            throw StoreError.unsafeTestID(testID, reason: "its file part is an absolute path")
        }
        let components = bytes.split(separator: slash, omittingEmptySubsequences: true).filter {
            !$0.elementsEqual([dot])
        }
        // `..` as a component, also between backslashes (a Windows path in a test id).
        let parent: [UInt8] = [dot, dot]
        if components.contains(where: { component in
            component.split(separator: backslash, omittingEmptySubsequences: false).contains {
                $0.elementsEqual(parent)
            }
        }) {
            throw StoreError.unsafeTestID(testID, reason: "its file part contains '..'")
        }
        let folders = components.dropLast()
        if let long = folders.first(where: { $0.count > maximumFolderNameBytes }) {
            let name = String(decoding: long, as: UTF8.self)
            throw StoreError.unsafeTestID(
                testID,
                reason: "its folder name \"\(name.prefix(32))…\" is \(long.count) bytes long, "
                    + "more than the \(maximumFolderNameBytes) a file system allows"
            )
        }
        guard !folders.isEmpty else { return "recordings" }
        return folders.map { String(decoding: $0, as: UTF8.self) }.joined(separator: "/") + "/recordings"
    }

    private static let slash = UInt8(ascii: "/")
    private static let backslash = UInt8(ascii: "\\")
    private static let dot = UInt8(ascii: ".")
}

extension RecordingLayout {
    /// The part of a test id before its first `::`, or `nil` when it has none. Found on UTF-8
    /// bytes, as Python's `split("::")` finds it on code points (a `:` followed by a combining
    /// mark is still a `:`).
    static func filePart(of testID: String) -> Substring? {
        let utf8 = testID.utf8
        var previous: String.UTF8View.Index?
        for index in utf8.indices {
            if utf8[index] == UInt8(ascii: ":") {
                if let previous { return testID[..<previous] }
                previous = index
            } else {
                previous = nil
            }
        }
        return nil
    }
}
