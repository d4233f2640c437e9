public import PythonJSON

/// How one exchange ended: what the session report counts (and, later, what a journal lists).
package enum ExchangeOutcome: Sendable {
    /// Answered from the recording in these files (several for a model-list union).
    case replayed(paths: [String])
    /// Answered without upstream or recording (protocol chatter in replay mode).
    case answeredLocally
    /// Replay mode had no recording.
    case missed(MissedRequest)
    /// Forwarded, and recorded to `path`.
    case recorded(path: String)
    /// Forwarded without recording.
    case passedThrough
    /// Answered with an error: a bad request, an upstream failure, a corrupt recording, or a
    /// recording that could not be saved (`storeFailure`, its reason).
    case failed(storeFailure: String?)
    /// A fault was injected (``Fault``); counted besides the exchange's own outcome when the
    /// exchange still ran (a delay, a cut stream), alone when the fault answered in its place.
    case faulted
}

/// A replay miss, as the session report lists it.
public struct MissedRequest: Sendable, Equatable {
    public var testID: String?
    public var method: String
    /// The recorded URL (credentials removed), or a tool's `provider.name`.
    public var url: String
    public var hash: String
    public var diagnosis: MissDiagnosis?

    init(_ request: RecorderRequest, diagnosis: MissDiagnosis?) {
        testID = request.testID
        method = request.summary.method
        url = request.summary.url
        hash = request.hash
        self.diagnosis = diagnosis
    }

    var json: JSONValue {
        [
            "test_id": testID.map(JSONValue.string) ?? .null, "method": .string(method), "url": .string(url),
            "hash": .string(hash), "nearest": diagnosis?.json ?? .null,
            "diagnosis": diagnosis.map { .string($0.text) } ?? .null,
        ]
    }

    init?(json value: JSONValue) {
        guard let method = value["method"]?.stringValue, let url = value["url"]?.stringValue,
            let hash = value["hash"]?.stringValue
        else { return nil }
        self.testID = value["test_id"]?.stringValue
        self.method = method
        self.url = url
        self.hash = hash
        self.diagnosis = value["nearest"].flatMap(MissDiagnosis.init(json:))
    }
}

/// What one session of a recorder did: counts, misses with their diagnostics, the recordings it
/// wrote and used, and those under the root it did not use. Paths are relative to the root.
public struct SessionReport: Sendable, Equatable {
    public var mode: RecordingMode
    /// The recordings root (absolute).
    public var root: String
    /// Requests answered from a recording.
    public var hits: Int
    /// Replay-mode requests with no recording.
    public var misses: Int
    /// New recordings written.
    public var recorded: Int
    /// Requests forwarded without recording.
    public var passedThrough: Int
    /// Requests answered with an error (bad requests, upstream failures, corrupt recordings,
    /// recordings that could not be saved).
    public var errors: Int
    /// Every miss, with its diagnosis (the first 1,000).
    public var missedRequests: [MissedRequest]
    /// The recordings written, in order.
    public var written: [String]
    /// The recordings that answered a request or were written (every file of a model-list union served).
    public var used: [String]
    /// Recording files under the root that no request used.
    public var unused: [String]
    /// Why recordings could not be saved, one entry per failure.
    public var storeFailures: [String]
    /// The test id a report of one test is of (`Recorder.report(forTestID:)`); `nil` for a
    /// whole session.
    public var testID: String?
    /// Exchanges a fault was injected into.
    public var faults = 0

    struct Counters {
        var hits = 0
        var misses = 0
        var recorded = 0
        var passedThrough = 0
        var errors = 0
        var faults = 0
        var missedRequests: [MissedRequest] = []
        var written: [String] = []
        var storeFailures: [String] = []
        var used: Set<String> = []
        /// The same counts for each test id (`""` for requests with none).
        var tests: [String: Counters] = [:]

        mutating func add(_ outcome: ExchangeOutcome, testID: String?) {
            add(outcome)
            tests[testID ?? "", default: Counters()].add(outcome)
        }

        mutating func add(_ outcome: ExchangeOutcome) {
            switch outcome {
            case .replayed(let paths):
                hits += 1
                for path in paths { used.insert(path) }
            case .answeredLocally:
                break
            case .missed(let request):
                misses += 1
                if missedRequests.count < 1000 { missedRequests.append(request) }
            case .recorded(let path):
                recorded += 1
                used.insert(path)
                if written.count < 100_000 { written.append(path) }
            case .passedThrough:
                passedThrough += 1
            case .failed(let storeFailure):
                errors += 1
                if let storeFailure, storeFailures.count < 1000 { storeFailures.append(storeFailure) }
            case .faulted:
                faults += 1
            }
        }
    }

    /// One line for logs.
    public var summary: String {
        var line =
            "mode \(mode.rawValue): \(hits) replayed, \(misses) missed, \(recorded) recorded, "
            + "\(passedThrough) passed through, \(unused.count) unused recordings"
        if errors > 0 { line += ", \(errors) errors" }
        if faults > 0 { line += ", \(faults) faults injected" }
        if !storeFailures.isEmpty { line += " (\(storeFailures.count) recordings could not be saved)" }
        return line
    }

    /// The report as JSON: what `GET /__recorder/report` answers and `serve --report-file` writes,
    /// and what `api-recorder prune` reads. `summary` is the log line; each miss's `diagnosis`
    /// is its `nearest` in words.
    public var json: JSONValue {
        [
            "version": 1, "summary": .string(summary), "mode": .string(mode.rawValue), "root": .string(root),
            "replayed": .integer(hits),
            "missed": .integer(misses), "recorded": .integer(recorded), "passed_through": .integer(passedThrough),
            "errors": .integer(errors), "misses": .array(missedRequests.map(\.json)),
            "written": .array(written.map(JSONValue.string)), "used": .array(used.map(JSONValue.string)),
            "unused": .array(unused.map(JSONValue.string)),
            "store_failures": .array(storeFailures.map(JSONValue.string)),
            "test_id": testID.map(JSONValue.string) ?? .null, "faults": .integer(faults),
        ]
    }
}

extension SessionReport {
    /// Writes the report's JSON to `path`, atomically.
    /// - Throws: ``StoreError`` naming the path.
    public func write(to path: String) throws(StoreError) {
        try FileSystem.writeAtomically(json.fileBytes(), to: FileSystem.absolute(path))
    }

    /// Merges this report into the one at `path` (created when absent), under a lock, so that
    /// many scopes and processes (parallel test runners) can add to one file: counts add up,
    /// lists are joined, and `unused` is what no report used.
    /// - Throws: ``StoreError`` naming the path.
    public func merge(into path: String) throws(StoreError) {
        let path = FileSystem.absolute(path)
        try FileSystem.withLock(path + ".lock") { () throws(StoreError) in
            var merged = self
            if FileSystem.stamp(path) != nil {
                let bytes = try FileSystem.read(path)
                if let value = try? JSONValue(parsing: bytes), let earlier = SessionReport(json: value),
                    earlier.root == root
                {
                    merged = earlier.adding(self)
                }
            }
            try merged.write(to: path)
        }
    }

    /// This report and `other` (of the same root) as one.
    func adding(_ other: SessionReport) -> SessionReport {
        var merged = self
        merged.hits += other.hits
        merged.misses += other.misses
        merged.recorded += other.recorded
        merged.passedThrough += other.passedThrough
        merged.errors += other.errors
        merged.missedRequests += other.missedRequests
        merged.written += other.written
        merged.used = Array(Set(used).union(other.used)).sorted()
        let usedSet = Set(merged.used)
        merged.unused = Array(Set(unused).union(other.unused)).filter { !usedSet.contains($0) }.sorted()
        merged.storeFailures += other.storeFailures
        merged.faults += other.faults
        return merged
    }

    /// A report read back from its JSON.
    public init?(json value: JSONValue) {
        guard let modeName = value["mode"]?.stringValue, let mode = RecordingMode(rawValue: modeName),
            let root = value["root"]?.stringValue
        else { return nil }
        func strings(_ key: String) -> [String] { value[key]?.arrayValue?.compactMap(\.stringValue) ?? [] }
        self.init(
            mode: mode,
            root: root,
            hits: value["replayed"]?.intValue ?? 0,
            misses: value["missed"]?.intValue ?? 0,
            recorded: value["recorded"]?.intValue ?? 0,
            passedThrough: value["passed_through"]?.intValue ?? 0,
            errors: value["errors"]?.intValue ?? 0,
            missedRequests: (value["misses"]?.arrayValue ?? []).compactMap(MissedRequest.init(json:)),
            written: strings("written"),
            used: strings("used"),
            unused: strings("unused"),
            storeFailures: strings("store_failures"),
            testID: value["test_id"]?.stringValue
        )
        faults = value["faults"]?.intValue ?? 0
    }
}
