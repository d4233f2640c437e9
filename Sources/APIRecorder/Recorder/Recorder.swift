public import Logging
import Synchronization

/// The facts about a request that the mode logic needs, whatever front end received it.
package struct RecorderRequest: Sendable {
    package var identity: RequestIdentity
    /// The identity's hash, computed once.
    package let hash: String
    package var testID: String?
    /// Model-list requests are looked up as the union of `models-<hash>-*.json`.
    package var isModelList: Bool
    /// Whether the exchange is recorded at all. Protocol chatter (MCP notifications, session
    /// streams) is forwarded when recording but never stored, and answered locally on replay.
    package var isRecordable: Bool
    /// What the request was, for messages and logs only: never hashed or stored.
    package var summary: RequestSummary

    package init(
        identity: RequestIdentity,
        testID: String?,
        summary: RequestSummary,
        isModelList: Bool = false,
        isRecordable: Bool = true
    ) {
        self.identity = identity
        self.hash = identity.hash
        self.testID = testID
        self.summary = summary
        self.isModelList = isModelList
        self.isRecordable = isRecordable
    }
}

/// A request described for people: in miss messages and logs. Secrets are already removed.
package struct RequestSummary: Sendable {
    package var method: String
    /// The recorded URL, with its query (credentials removed), or a tool's `provider.name`.
    package var url: String
    package var model: String?

    package init(method: String, url: String, model: String?) {
        self.method = method
        self.url = url
        self.model = model
    }
}

/// What to do with a request. Each case carries exactly what its path needs: only a recording
/// leader holds a flight lease, so live and pass-through exchanges cannot end one by mistake.
package enum RecorderDecision: Sendable {
    /// Answer from this recording.
    case replay(StoredRecording)
    /// Answer without the upstream and without a recording (an unrecorded exchange in replay mode).
    case answerLocally
    /// Call the upstream and record nothing (live mode, or an exchange that is never recorded).
    case passThrough
    /// Call the upstream and record the outcome. `lease` is set in `record-if-missing` mode:
    /// identical requests wait on it, and it must be ended with the outcome.
    case record(lease: FlightLease?)
    /// An identical request this one waited for failed without a recording: answer with its error.
    case shareFailure(any Error & Sendable)
}

/// The mode logic, written once for every front end (the proxy, the Swift test hooks, the tool
/// API): find a recording, replay it, or forward and record. The ``ExchangePipeline`` drives it.
///
/// In `record-if-missing` mode identical requests in flight at once share one upstream call: the
/// first forwards and records, the others wait for it and replay its recording, or, when it failed
/// without one, get its failure together.
public final class Recorder: Sendable {
    public let store: RecordingStore
    public let mode: RecordingMode
    let logger: Logger
    private let flights = FlightTable()
    /// The deterministic ids this session handed out, and the ids the upstream issued for them.
    package let issuedIDs = IssuedIDs()
    private let counters = Mutex(SessionReport.Counters())
    /// The faults set for test ids, which the pipeline applies to their exchanges.
    public let faults = FaultTable()
    /// The last exchanges answered, for `GET /__recorder/journal` and ``RecordingScope``.
    public let journal: Journal

    /// - Parameter journalSize: how many exchanges ``journal`` keeps (0: none).
    public init(store: RecordingStore, mode: RecordingMode, journalSize: Int = 1000, logger: Logger? = nil) {
        self.store = store
        self.mode = mode
        self.journal = Journal(capacity: journalSize)
        self.logger = logger ?? Logger(label: "api-recorder", factory: { _ in SwiftLogNoOpLogHandler() })
    }

    /// Decides how to answer `request` in this recorder's mode.
    /// - Throws: ``RecorderError`` for a replay miss (naming the hash, test id, request, the
    ///   folders searched and how to record it), a test id that cannot name a folder (checked
    ///   before anything is forwarded in the recording modes), or a corrupt recording.
    package func decide(_ request: RecorderRequest) async throws(RecorderError) -> RecorderDecision {
        if !request.isRecordable {
            return mode.callsUpstream ? .passThrough : .answerLocally
        }
        switch mode {
        case .live:
            return .passThrough
        case .record:
            try checkWritable(request)
            return .record(lease: nil)
        case .replay:
            if let hit = try lookup(request) { return .replay(hit) }
            throw try missError(for: request)
        case .recordIfMissing:
            try checkWritable(request)
            while true {
                if let hit = try lookup(request) { return .replay(hit) }
                switch await flights.enter(request.hash) {
                case .lead(let lease):
                    // Another request may have recorded it while this one waited for the table.
                    // (A throwing look-up drops the lease, which ends it.)
                    if let hit = try lookup(request) {
                        lease.succeed()
                        return .replay(hit)
                    }
                    return .record(lease: lease)
                case .followed(.failed(let error)):
                    return .shareFailure(error)
                case .followed(.succeeded):
                    // The leader is done: its recording is there now (looked up again above).
                    continue
                }
            }
        }
    }

    /// Stores the recording of a forwarded request.
    /// - Returns: the file written.
    /// - Throws: ``RecorderError`` (storage) naming the reason; nothing partial is left.
    @discardableResult
    package func record(_ recording: Recording, for request: RecorderRequest) throws(RecorderError) -> String {
        do {
            return try store.save(recording, hash: request.hash)
        } catch {
            logger.error(
                "could not save a recording",
                metadata: ["hash": "\(request.hash)", "reason": "\(error.message)"]
            )
            throw RecorderError(store: error)
        }
    }

    /// Counts how an exchange of `testID` ended, for the session report and the test's own.
    package func note(_ outcome: ExchangeOutcome, testID: String?) {
        counters.withLock { $0.add(outcome, testID: testID) }
    }

    /// Counts how a prepared exchange ended.
    package func note(_ outcome: ExchangeOutcome, for exchange: PreparedExchange<some Sendable>) {
        note(outcome, testID: exchange.recorderRequest.testID)
    }

    /// Starts the counts of `testID` afresh (a test runner does, before each test), so that a
    /// test that runs again is reported on its own. The session's counts are unchanged.
    public func beginTest(_ testID: String?) {
        counters.withLock { _ = $0.tests.removeValue(forKey: testID ?? "") }
    }

    /// Refuses, before anything is forwarded, a test id whose recordings could not be written.
    private func checkWritable(_ request: RecorderRequest) throws(RecorderError) {
        do {
            _ = try store.directory(forTestID: request.testID)
        } catch {
            throw RecorderError(store: error)
        }
    }

    private func lookup(_ request: RecorderRequest) throws(RecorderError) -> StoredRecording? {
        let hash = request.hash
        do {
            // A model-list request whose answer was no list (an upstream error) is `<hash>.json`.
            var hit: StoredRecording? = nil
            if request.isModelList { hit = try store.lookupModelList(hash: hash, testID: request.testID) }
            if hit == nil { hit = try store.lookup(hash: hash, testID: request.testID) }
            if let hit { logger.debug("replaying", metadata: ["hash": "\(hash)", "path": "\(hit.path)"]) }
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
        let diagnosis = NearestRecording.diagnose(request, folders: folders, store: store)
        return RecorderError.notFound(request: request, searched: folders, diagnosis: diagnosis)
    }

    // MARK: Session report

    /// What this recorder has done so far, and which recordings under the store's root it has not used.
    public func report() -> SessionReport {
        let counters = self.counters.withLock { $0 }
        let all = RecordingVerifier.recordingFiles(in: [store.root]).map(store.relativePath)
        let used = Set(counters.used.map(store.relativePath))
        return report(of: counters, testID: nil, unused: all.filter { !used.contains($0) })
    }

    /// What this recorder has done for one test id (`nil`: requests with none) since it began
    /// (``beginTest(_:)``): its counts, misses, and the recordings it wrote and used. Cheap: it
    /// lists no files (`unused` is empty).
    public func report(forTestID testID: String?) -> SessionReport {
        let counters = self.counters.withLock { $0.tests[testID ?? ""] } ?? SessionReport.Counters()
        return report(of: counters, testID: testID, unused: [])
    }

    private func report(of counters: SessionReport.Counters, testID: String?, unused: [String]) -> SessionReport {
        var report = SessionReport(
            mode: mode,
            root: store.root,
            hits: counters.hits,
            misses: counters.misses,
            recorded: counters.recorded,
            passedThrough: counters.passedThrough,
            errors: counters.errors,
            missedRequests: counters.missedRequests,
            written: counters.written.map(store.relativePath),
            used: counters.used.map(store.relativePath).sorted(),
            unused: unused,
            storeFailures: counters.storeFailures,
            testID: testID
        )
        report.faults = counters.faults
        return report
    }
}
