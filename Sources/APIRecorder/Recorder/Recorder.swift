public import Logging
import Synchronization

/// The facts about a request that the mode logic needs, whatever front end received it.
public struct RecorderRequest: Sendable {
    public var identity: RequestIdentity
    public var testID: String?
    /// Model-list requests are looked up as the union of `models-<hash>-*.json`.
    public var isModelList: Bool
    /// For messages: what the request was.
    public var method: String
    public var url: String
    public var model: String?
    /// Whether the exchange is recorded at all. Protocol chatter (MCP notifications, session
    /// streams) is forwarded when recording but never stored, and answered locally on replay.
    public var isRecordable: Bool

    public init(
        identity: RequestIdentity, testID: String?, isModelList: Bool = false, method: String, url: String, model: String?,
        isRecordable: Bool = true
    ) {
        self.isRecordable = isRecordable
        self.identity = identity
        self.testID = testID
        self.isModelList = isModelList
        self.method = method
        self.url = url
        self.model = model
    }
}

/// What to do with a request.
public enum RecorderDecision: Sendable {
    /// Answer from this recording.
    case replay(StoredRecording)
    /// Answer without the upstream and without a recording (an unrecorded exchange in replay mode).
    case answerLocally
    /// Call the upstream. When `record` is set, hand the outcome to ``Recorder/record(_:for:)``.
    /// A `flight` must be ended (``FlightLease/end()``) once the exchange is over, recorded or not,
    /// so that identical requests waiting on it go on.
    case forward(record: Bool, flight: FlightLease?)
}

/// The mode logic, written once for every front end (the proxy, the Swift test hooks, the tool API):
/// find a recording, replay it, or forward and record.
///
/// In `record-if-missing` mode identical requests in flight at once share one upstream call: the
/// first forwards and records, the others wait for it and replay its recording.
///
/// ```swift
/// let recorder = Recorder(store: store, mode: .recordIfMissing, logger: logger)
/// switch try await recorder.decide(request) {
/// case .replay(let hit): ...                       // answer from hit.recording
/// case .forward(let record, let flight): ...       // call upstream; if record, recorder.record(...)
/// }
/// ```
public final class Recorder: Sendable {
    public let store: RecordingStore
    public let mode: RecordingMode
    private let logger: Logger
    private let flights = FlightTable()
    private let counters = Mutex(SessionReport.Counters())

    public init(store: RecordingStore, mode: RecordingMode, logger: Logger? = nil) {
        self.store = store
        self.mode = mode
        self.logger = logger ?? Logger(label: "api-recorder", factory: { _ in SwiftLogNoOpLogHandler() })
    }

    /// Decides how to answer `request` in this recorder's mode.
    /// - Throws: ``RecorderError`` for a replay miss (naming the hash, test id, request, the
    ///   folders searched and how to record it), an unsafe test id, or a corrupt recording.
    public func decide(_ request: RecorderRequest) async throws(RecorderError) -> RecorderDecision {
        // Forwarding without recording is counted by the front end, which knows it happened
        // (``notePassedThrough()``).
        if !request.isRecordable {
            guard mode.callsUpstream else { return .answerLocally }
            return .forward(record: false, flight: nil)
        }
        switch mode {
        case .live:
            return .forward(record: false, flight: nil)
        case .record:
            return .forward(record: true, flight: nil)
        case .replay:
            if let hit = try lookup(request) { return .replay(hit) }
            counters.withLock { $0.misses += 1 }
            logger.warning("recording not found", metadata: ["hash": "\(request.identity.hash)"])
            throw try missError(for: request)
        case .recordIfMissing:
            let hash = request.identity.hash
            while true {
                if let hit = try lookup(request) { return .replay(hit) }
                if await flights.enter(hash) {
                    // Another request may have recorded it while this one waited for the table.
                    if let hit = try lookup(request) {
                        await flights.leave(hash)
                        return .replay(hit)
                    }
                    return .forward(record: true, flight: FlightLease(table: flights, key: hash))
                }
                // Followed an identical request to its end: look again (it may have failed).
            }
        }
    }

    /// Stores the recording of a forwarded request.
    /// - Returns: the file written.
    @discardableResult
    public func record(_ recording: Recording, for request: RecorderRequest) throws(RecorderError) -> String {
        do {
            let path = try store.save(recording, hash: request.identity.hash)
            counters.withLock {
                $0.recorded += 1
                $0.used.insert(path)
            }
            return path
        } catch {
            logger.error("could not save a recording", metadata: ["hash": "\(request.identity.hash)", "reason": "\(error)"])
            throw RecorderError(store: error)
        }
    }

    /// Counts a forwarded request that was not recorded (an upstream failure, live mode).
    public func notePassedThrough() {
        counters.withLock { $0.passedThrough += 1 }
    }

    private func lookup(_ request: RecorderRequest) throws(RecorderError) -> StoredRecording? {
        let hash = request.identity.hash
        do {
            let hit =
                request.isModelList
                ? try store.lookupModelList(hash: hash, testID: request.testID)
                : try store.lookup(hash: hash, testID: request.testID)
            if let hit {
                counters.withLock {
                    $0.hits += 1
                    $0.used.insert(hit.path)
                }
                logger.debug("replaying", metadata: ["hash": "\(hash)", "path": "\(hit.path)"])
            }
            return hit
        } catch {
            throw RecorderError(store: error)
        }
    }

    private func missError(for request: RecorderRequest) throws(RecorderError) -> RecorderError {
        let folders: [String]
        do {
            folders = try store.searchedDirectories(forTestID: request.testID)
        } catch {
            throw RecorderError(store: error)
        }
        return RecorderError.notFound(request: request, searched: folders)
    }

    // MARK: Session report

    /// What this recorder has done so far, and which recordings under the store's root it has not used.
    public func report() -> SessionReport {
        let counters = self.counters.withLock { $0 }
        let all = RecordingVerifier.recordingFiles(in: [store.root])
        let unused = all.filter { !counters.used.contains($0) && !counters.used.contains(FileSystem.absolute($0)) }
        return SessionReport(
            mode: mode, hits: counters.hits, misses: counters.misses, recorded: counters.recorded,
            passedThrough: counters.passedThrough, unused: unused)
    }
}

/// Counts for one session of a recorder.
public struct SessionReport: Sendable, Equatable {
    public var mode: RecordingMode
    /// Requests answered from a recording.
    public var hits: Int
    /// Replay-mode requests with no recording.
    public var misses: Int
    /// New recordings written.
    public var recorded: Int
    /// Requests forwarded without recording.
    public var passedThrough: Int
    /// Recording files under the root that no request used.
    public var unused: [String]

    struct Counters {
        var hits = 0
        var misses = 0
        var recorded = 0
        var passedThrough = 0
        var used: Set<String> = []
    }

    /// One line for logs.
    public var summary: String {
        "mode \(mode.rawValue): \(hits) replayed, \(misses) missed, \(recorded) recorded, "
            + "\(passedThrough) passed through, \(unused.count) unused recordings"
    }
}

/// The right to forward one request while identical ones wait.
public final class FlightLease: Sendable {
    private let table: FlightTable
    private let key: String
    private let ended = Mutex(false)

    init(table: FlightTable, key: String) {
        self.table = table
        self.key = key
    }

    /// Lets the requests waiting on this one go on. Safe to call more than once.
    public func end() async {
        let first = ended.withLock { ended in
            defer { ended = true }
            return !ended
        }
        if first { await table.leave(key) }
    }
}

/// Requests in flight, by hash, and who waits for them.
actor FlightTable {
    private var waiting: [String: [CheckedContinuation<Void, Never>]] = [:]

    /// Returns `true` when the caller leads (no identical request in flight); otherwise waits until
    /// the leader leaves and returns `false`.
    func enter(_ key: String) async -> Bool {
        if waiting[key] == nil {
            waiting[key] = []
            return true
        }
        await withCheckedContinuation { continuation in waiting[key, default: []].append(continuation) }
        return false
    }

    func leave(_ key: String) {
        for continuation in waiting.removeValue(forKey: key) ?? [] { continuation.resume() }
    }
}
