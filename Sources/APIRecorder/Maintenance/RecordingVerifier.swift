/// Checks recording files against the format, and repairs what can be repaired.
///
/// A file is right when it parses, its name is the hash its content implies (model-list files:
/// hash and digest), and its bytes are exactly what the reference's writer would write.
public enum RecordingVerifier {
    /// One problem with one file.
    public enum Problem: Sendable, Equatable, CustomStringConvertible {
        /// The file cannot be read or parsed, or has the wrong shape.
        case unreadable(String)
        /// The content implies another name: the file is stale, no request can find it.
        case misnamed(expected: String)
        /// The bytes differ from the writer's output for the same content.
        case notCanonical

        public var description: String {
            switch self {
            case .unreadable(let reason): return "unreadable: \(reason)"
            case .misnamed(let expected):
                return "stale: its content hashes to \(expected), so it can never replay under this name "
                    + "(misnamed; api-recorder explain tells why, verify --fix renames it)"
            case .notCanonical: return "not canonical: bytes differ from the reference writer's output"
            }
        }
    }

    /// The verdict on one file.
    public struct Report: Sendable {
        public let path: String
        public let problems: [Problem]
        /// The parsed recording, when it parsed.
        public let recording: Recording?
        /// The name its content implies, when it parsed.
        public let expectedName: String?

        public var isOK: Bool { problems.isEmpty }
    }

    /// Verifies one file.
    public static func verify(path: String) -> Report {
        let bytes: [UInt8]
        do {
            bytes = try FileSystem.read(path)
        } catch {
            return Report(path: path, problems: [.unreadable(error.message)], recording: nil, expectedName: nil)
        }
        let recording: Recording
        let expectedName: String
        do {
            recording = try Recording(parsing: bytes)
            expectedName = try recording.fileName()
        } catch {
            return Report(path: path, problems: [.unreadable(error.reason)], recording: nil, expectedName: nil)
        }
        var problems: [Problem] = []
        if fileName(of: path) != expectedName { problems.append(.misnamed(expected: expectedName)) }
        if !recording.fileBytes().elementsEqual(bytes) { problems.append(.notCanonical) }
        return Report(path: path, problems: problems, recording: recording, expectedName: expectedName)
    }

    /// What ``fix(_:)`` did.
    public enum FixOutcome: Sendable, Equatable {
        case unchanged
        /// Rewritten in place and/or renamed; `path` is where the file is now.
        case fixed(path: String)
        /// The right name is taken by a file with other content; nothing was changed.
        case conflict(existing: String)
        /// Unreadable files cannot be repaired.
        case notFixable
    }

    /// Repairs a report's problems: writes the canonical bytes under the right name atomically,
    /// then removes the misnamed file. A file already at the right name is replaced only when it
    /// holds the same recording.
    public static func fix(_ report: Report) throws(StoreError) -> FixOutcome {
        guard let recording = report.recording, let expectedName = report.expectedName else { return .notFixable }
        if report.isOK { return .unchanged }
        let folder = FileSystem.parent(of: report.path)
        let target = "\(folder)/\(expectedName)"
        let renaming = target != report.path
        if renaming, FileSystem.stamp(target) != nil {
            let existing = try? Recording(parsing: FileSystem.read(target))
            if existing != recording { return .conflict(existing: target) }
        }
        try FileSystem.writeAtomically(recording.fileBytes(), to: target)
        if renaming { try FileSystem.remove(report.path) }
        return .fixed(path: target)
    }

    /// Every recording file under each path: files are taken as they are, folders are walked for
    /// `.json` files inside folders named `recordings`.
    public static func recordingFiles(in paths: [String]) -> [String] {
        var files: [String] = []
        for path in paths {
            if FileSystem.isDirectory(path) {
                files.append(contentsOf: FileSystem.recordingFiles(under: path))
            } else {
                files.append(path)
            }
        }
        return files
    }

    /// Temporary files that interrupted writes left in the `recordings` folders under each path
    /// (a process killed between creating and renaming one): no process has them open (on Linux;
    /// elsewhere, their process is gone or they are older than ten minutes). A write in progress
    /// is not one of them.
    public static func abandonedTemporaryFiles(in paths: [String]) -> [String] {
        paths.flatMap { path in
            FileSystem.isDirectory(path) ? FileSystem.temporaryFiles(under: path) : []
        }.filter { FileSystem.isAbandonedTemporaryFile($0) }
    }

    /// Removes an abandoned temporary file.
    public static func removeTemporaryFile(_ path: String) throws(StoreError) {
        try FileSystem.remove(path)
    }

    /// `path` relative to `root` (both made absolute), or the absolute path when it lies elsewhere.
    public static func relativePath(_ path: String, root: String) -> String {
        let (absolutePath, absoluteRoot) = (FileSystem.absolute(path), FileSystem.absolute(root))
        return absolutePath.hasPrefix(absoluteRoot + "/")
            ? String(absolutePath.dropFirst(absoluteRoot.count + 1)) : absolutePath
    }

    /// The folder of the file at `path`, relative to `root`; `nil` when it lies elsewhere.
    public static func relativeFolder(of path: String, root: String) -> String? {
        let relative = relativePath(FileSystem.parent(of: FileSystem.absolute(path)), root: root)
        return relative.hasPrefix("/") ? nil : relative
    }

    static func fileName(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }
}
