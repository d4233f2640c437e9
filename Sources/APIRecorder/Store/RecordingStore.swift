public import Logging
import Synchronization

/// The request of a recording file, for explaining misses.
struct RecordedRequest: Sendable {
    let path: String
    let testID: String?
    let request: JSONObject

    var identity: RequestIdentity { RequestIdentity(recordedRequest: request, fileTestID: testID) }
}

/// A recording found on disk.
public struct StoredRecording: Sendable {
    public let recording: Recording
    /// The replay plans already rendered from this parse of the file.
    package let renderings: ReplayRenderings
    /// The file it came from (for a model-list union, the first of its files).
    public let path: String
    /// Every file it came from: the one, or all the files of a model-list union.
    public let paths: [String]

    init(recording: Recording, path: String, paths: [String]? = nil, renderings: ReplayRenderings = ReplayRenderings())
    {
        self.recording = recording
        self.renderings = renderings
        self.path = path
        self.paths = paths ?? [path]
    }
}

/// The recordings folder tree, in the reference's layout.
///
/// - A test's recordings live beside its test file (``RecordingLayout``); set-up recordings and
///   ids without `::` live in the fallback folder. Look-ups try the test's folder, then the fallback.
/// - Parsed recordings are cached by path and revalidated with one `stat`, so a hit costs no
///   parsing and files written by another process are still noticed.
/// - Writes are atomic (``FileSystem/writeAtomically(_:to:)``).
///
/// ```swift
/// let store = RecordingStore(root: "/repo", fallbackDirectory: "tests/integration/common/recordings")
/// if let hit = try store.lookup(hash: identity.hash, testID: testID) { ... }
/// ```
public final class RecordingStore: Sendable {
    /// The absolute root that test-id folders are relative to.
    public let root: String
    /// The absolute fallback folders, in look-up order; recordings without a test folder are
    /// written to the first.
    public let fallbackDirectories: [String]
    /// The fallback folder recordings are written to.
    public var fallbackDirectory: String { fallbackDirectories[0] }
    /// The root with its trailing `/`, what relative paths drop.
    private let rootPrefix: String
    private let logger: Logger
    private let state = Mutex(State())
    /// How many entries each cache keeps before it starts over.
    private let cacheLimit = 8192
    /// How many bytes of files the parsed cache keeps before it starts over: a parsed recording
    /// takes a few times its file's size, and a run may replay a whole tree of them.
    private let parsedByteLimit = 8 << 20

    private struct Parsed {
        var stamp: FileSystem.Stamp
        var recording: Recording
        var renderings: ReplayRenderings
    }

    private struct State {
        var parsed: [String: Parsed] = [:]
        /// The file bytes behind ``parsed``.
        var parsedBytes = 0
        var listings: [String: (stamp: FileSystem.Stamp?, names: [String])] = [:]
        /// The folders searched for each test id seen (a test sends many requests).
        var searched: [String: [String]] = [:]
        /// The requests of recordings read to explain misses, by path.
        var requests: [String: (stamp: FileSystem.Stamp, request: RecordedRequest)] = [:]
    }

    /// - Parameters:
    ///   - root: the recordings root (relative paths are taken from the current folder).
    ///   - fallbackDirectory: the fallback folder, relative to `root` unless absolute. Default `recordings`.
    ///   - logger: where look-ups and writes are logged (at debug and info).
    public convenience init(root: String, fallbackDirectory: String = "recordings", logger: Logger? = nil) {
        self.init(root: root, fallbackDirectories: [fallbackDirectory], logger: logger)
    }

    /// - Parameters:
    ///   - root: the recordings root (relative paths are taken from the current folder).
    ///   - fallbackDirectories: the fallback folders, each relative to `root` unless absolute, in
    ///     look-up order (the reference keeps one per suite); writes go to the first. Empty means
    ///     `recordings`.
    ///   - logger: where look-ups and writes are logged (at debug and info).
    public init(root: String, fallbackDirectories: [String], logger: Logger? = nil) {
        let root = FileSystem.absolute(root)
        self.root = root
        rootPrefix = root == "/" ? "/" : root + "/"
        var folders: [String] = []
        for folder in fallbackDirectories.isEmpty ? ["recordings"] : fallbackDirectories {
            let absolute =
                folder.hasPrefix("/") ? FileSystem.absolute(folder) : FileSystem.absolute("\(root)/\(folder)")
            if !folders.contains(absolute) { folders.append(absolute) }
        }
        self.fallbackDirectories = folders
        self.logger = logger ?? Logger(label: "api-recorder.store", factory: { _ in SwiftLogNoOpLogHandler() })
    }

    /// `path` relative to the root, when it lies under it.
    public func relativePath(_ path: String) -> String {
        let absolute = path.hasPrefix("/") ? path : FileSystem.absolute(path)
        guard absolute.utf8.starts(with: rootPrefix.utf8) else { return absolute }
        return String(Substring(absolute.utf8.dropFirst(rootPrefix.utf8.count)))
    }

    // MARK: Layout

    /// The folder a recording of `testID` is written to.
    /// - Throws: ``StoreError`` for a test id that would leave the root.
    /// - Throws: ``StoreError`` for a test id that would leave the root, or whose folder's path
    ///   (with the longest recording file name) would be longer than the file system allows.
    public func directory(forTestID testID: String?) throws(StoreError) -> String {
        guard let relative = try RecordingLayout.relativeDirectory(forTestID: testID) else { return fallbackDirectory }
        let folder = "\(root)/\(relative)"
        let longest = folder.utf8.count + 1 + RecordingLayout.maximumFileNameBytes
        if longest > RecordingLayout.maximumPathBytes, let testID {
            throw StoreError.unsafeTestID(
                testID,
                reason: "its recordings would have paths of \(longest) bytes, "
                    + "more than the \(RecordingLayout.maximumPathBytes) a file system allows"
            )
        }
        return folder
    }

    /// The folders a look-up for `testID` searches, in order.
    public func searchedDirectories(forTestID testID: String?) throws(StoreError) -> [String] {
        let key = testID ?? ""
        if let known = state.withLock({ $0.searched[key] }) { return known }
        let primary = try directory(forTestID: testID)
        let folders = [primary] + fallbackDirectories.filter { $0 != primary }
        state.withLock { state in
            if state.searched.count >= cacheLimit { state.searched.removeAll(keepingCapacity: true) }
            state.searched[key] = folders
        }
        return folders
    }

    // MARK: Reading

    /// Finds the recording named `<hash>.json` for `testID`: the test's folder first, then the
    /// fallback folders in order.
    /// - Throws: ``StoreError`` for an unsafe test id, or a file that exists but is corrupt.
    public func lookup(hash: String, testID: String?) throws(StoreError) -> StoredRecording? {
        for folder in try searchedDirectories(forTestID: testID) {
            var path = folder
            path.reserveCapacity(folder.utf8.count + hash.utf8.count + 6)
            path += "/"
            path += hash
            path += ".json"
            if let parsed = try loadParsed(path) {
                logger.debug("recording found", metadata: ["hash": "\(hash)", "path": "\(path)"])
                return StoredRecording(recording: parsed.recording, path: path, renderings: parsed.renderings)
            }
        }
        logger.debug("recording not found", metadata: ["hash": "\(hash)", "test_id": "\(testID ?? "null")"])
        return nil
    }

    /// Finds every `models-<hash>-*.json` for `testID` (test folder, then fallback) and returns
    /// their union (``ModelList/union(_:)``), or `nil` when there are none.
    public func lookupModelList(hash: String, testID: String?) throws(StoreError) -> StoredRecording? {
        var recordings: [Recording] = []
        var paths: [String] = []
        let prefix = "models-\(hash)-"
        for folder in try searchedDirectories(forTestID: testID) {
            for name in listing(of: folder) where name.hasPrefix(prefix) && name.hasSuffix(".json") {
                let path = "\(folder)/\(name)"
                if let recording = try load(path) {
                    recordings.append(recording)
                    paths.append(path)
                }
            }
        }
        guard let firstPath = paths.first else { return nil }
        do {
            guard let union = try ModelList.union(recordings) else { return nil }
            return StoredRecording(recording: union, path: firstPath, paths: paths)
        } catch {
            throw StoreError.corrupt(firstPath, error.reason)
        }
    }

    /// Reads and parses one recording file, using the cache when the file has not changed.
    /// Returns `nil` when there is no such file.
    /// - Throws: ``StoreError`` with code `corruptRecording` when the file cannot be used.
    public func load(_ path: String) throws(StoreError) -> Recording? {
        try loadParsed(path)?.recording
    }

    private func loadParsed(_ path: String) throws(StoreError) -> Parsed? {
        guard let stamp = FileSystem.stamp(path) else { return nil }
        if let cached = state.withLock({ $0.parsed[path] }), cached.stamp == stamp {
            return cached
        }
        let bytes: [UInt8]
        do {
            bytes = try FileSystem.read(path)
        } catch {
            if FileSystem.stamp(path) == nil { return nil }
            throw error
        }
        let recording: Recording
        do {
            recording = try Recording(parsing: bytes)
        } catch {
            logger.warning("corrupt recording", metadata: ["path": "\(path)", "reason": "\(error.reason)"])
            throw StoreError.corrupt(path, error.reason)
        }
        let parsed = Parsed(stamp: stamp, recording: recording, renderings: ReplayRenderings())
        keep(parsed, at: path)
        return parsed
    }

    /// Caches `parsed`, counting its file's size (from its stamp) against the byte limit.
    private func keep(_ parsed: Parsed, at path: String) {
        state.withLock { state in
            // A newer version of the same file replaces the older one's bytes.
            if let replaced = state.parsed.removeValue(forKey: path) { state.parsedBytes -= replaced.stamp.size }
            if state.parsed.count >= cacheLimit || state.parsedBytes + parsed.stamp.size > parsedByteLimit {
                state.parsed.removeAll(keepingCapacity: true)
                state.parsedBytes = 0
            }
            state.parsed[path] = parsed
            state.parsedBytes += parsed.stamp.size
        }
    }

    /// The requests of the recordings in `folders`, read only as far as their request (a miss
    /// must be explained fast, and responses are most of a file) and cached by file stamp.
    /// Unreadable files are left out.
    func recordedRequests(in folders: [String]) -> [RecordedRequest] {
        var result: [RecordedRequest] = []
        for folder in folders {
            for name in listing(of: folder) where name.hasSuffix(".json") && !name.hasPrefix(".") {
                let path = "\(folder)/\(name)"
                guard let stamp = FileSystem.stamp(path) else { continue }
                if let cached = state.withLock({ $0.requests[path] }), cached.stamp == stamp {
                    result.append(cached.request)
                    continue
                }
                guard let bytes = try? FileSystem.read(path),
                    let members = try? JSONValue.parseObjectPrefix(
                        bytes,
                        keys: ["test_id", "request"],
                        maximumDepth: Recording.maximumDepth
                    ),
                    case .object(let request)? = members["request"]
                else { continue }
                let recorded = RecordedRequest(path: path, testID: members["test_id"]?.stringValue, request: request)
                state.withLock { state in
                    if state.requests.count >= cacheLimit { state.requests.removeAll(keepingCapacity: true) }
                    state.requests[path] = (stamp, recorded)
                }
                result.append(recorded)
            }
        }
        return result
    }

    private func listing(of folder: String) -> [String] {
        let stamp = FileSystem.directoryStamp(folder)
        if let cached = state.withLock({ $0.listings[folder] }), cached.stamp == stamp, stamp != nil {
            return cached.names
        }
        let names = FileSystem.list(folder).sorted()
        state.withLock { $0.listings[folder] = (stamp, names) }
        return names
    }

    // MARK: Writing

    /// Writes `recording` atomically into its test's folder under the name its content implies,
    /// replacing any file of that name, and returns the path.
    /// - Parameter hash: the request hash, when the caller already has it.
    /// - Throws: ``StoreError`` for an unsafe test id or an I/O failure; nothing partial is left.
    @discardableResult
    public func save(_ recording: Recording, hash: String? = nil) throws(StoreError) -> String {
        let folder = try directory(forTestID: recording.testID)
        let name: String
        do {
            name = try recording.fileName(hash: hash ?? recording.hash)
        } catch {
            throw StoreError.corrupt("\(folder)/?", error.reason)
        }
        let path = "\(folder)/\(name)"
        let bytes = recording.fileBytes()
        try FileSystem.writeAtomically(bytes, to: path)
        if let stamp = FileSystem.stamp(path) {
            keep(Parsed(stamp: stamp, recording: recording, renderings: ReplayRenderings()), at: path)
        }
        logger.info("recording written", metadata: ["path": "\(path)", "bytes": "\(bytes.count)"])
        return path
    }
}

extension Recording {
    /// Reads and parses one recording file.
    /// - Throws: ``StoreError`` naming the file: `io` when it cannot be read, `corruptRecording`
    ///   when it is not a recording.
    public init(contentsOfFile path: String) throws(StoreError) {
        let bytes = try FileSystem.read(path)
        do {
            try self.init(parsing: bytes)
        } catch {
            throw StoreError.corrupt(path, error.reason)
        }
    }
}

extension RequestIdentity {
    /// The identity of one recording file, read only as far as its request (the fast path of
    /// `api-recorder hash`).
    /// - Throws: ``StoreError`` naming the file: `io` when it cannot be read, `corruptRecording`
    ///   when it is not valid JSON or has no request.
    public init(contentsOfRecordingFile path: String) throws(StoreError) {
        let bytes = try FileSystem.read(path)
        do {
            try self.init(recordingFile: bytes)
        } catch {
            throw StoreError.corrupt(path, error.reason)
        }
    }
}
