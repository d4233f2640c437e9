public import APIRecorder
import Foundation
import Synchronization
public import Testing

/// `@Test(.recording)` or `@Suite(.recording)`: each test runs inside its own ``RecordingScope``.
///
/// The test id is the test's file, relative to the package, and its name:
/// `Tests/<Target>/<File>.swift::<Suite>/<test>()`. The reference's layout files that under
/// `Tests/<Target>/recordings/`, beside the test file, with the package as the recordings root.
/// The mode comes from the environment as for `api-recorder serve` (replay when unset). A replay
/// miss fails the test with a message that names the hash and how to record it.
public struct RecordingTrait: TestTrait, SuiteTrait, TestScoping {
    /// The mode; `nil` reads the environment.
    public var mode: RecordingMode?
    /// The recordings root; `nil` is the package the test file belongs to.
    public var root: String?
    /// Whether to install ``RecordingURLProtocol`` globally when the test plan is prepared, before
    /// any test runs (FoundationNetworking consults a globally registered protocol only when it
    /// was registered before the process made its first URLSession).
    public var installsURLProtocolGlobally = false
    /// Faults applied to the test's exchanges, in order (``Fault``; each for its `times`).
    public var faults: [Fault] = []

    public func prepare(for test: Test) async throws {
        if installsURLProtocolGlobally { RecordingURLProtocol.installGlobally() }
    }

    public var isRecursive: Bool { true }

    public func scopeProvider(for test: Test, testCase: Test.Case?) -> Self? {
        // One scope per test case (a test function has at least one), none around a whole
        // suite or around all the cases of a parameterised test.
        test.isSuite || testCase == nil ? nil : self
    }

    public func provideScope(
        for test: Test,
        testCase: Test.Case?,
        performing function: @Sendable () async throws -> Void
    ) async throws {
        let place = Self.testPlace(of: test)
        var scope = try RecordingScope(root: root ?? place.root, mode: mode, testID: place.testID)
        scope.recorder.faults.set(faults, for: place.testID)
        // A miss in the test's own task fails the test at once. URLSession reports from its own
        // threads, where no test is current: those misses are kept and reported when the test ends.
        let lateMisses = Mutex<[RecorderError]>([])
        scope.onMiss = { error in
            if Test.current != nil {
                Issue.record(Comment(rawValue: error.message), sourceLocation: test.sourceLocation)
            } else {
                lateMisses.withLock { $0.append(error) }
            }
        }
        // Visible for the test's length to a globally installed URLProtocol too.
        scope.begin()
        defer {
            scope.end()
            for error in lateMisses.withLock({ $0 }) {
                Issue.record(Comment(rawValue: error.message), sourceLocation: test.sourceLocation)
            }
            Self.addToReport(scope.recorder.report())
        }
        try await scope.withValue(function)
    }

    /// The environment variable naming the file each test's session report is merged into
    /// (for `api-recorder prune`); relative paths are taken from the current folder.
    public static let reportVariable = "API_RECORDER_REPORT"

    private static func addToReport(_ report: SessionReport) {
        guard let file = ProcessInfo.processInfo.environment[reportVariable], !file.isEmpty else { return }
        do {
            try report.merge(into: file)
        } catch {
            FileHandle.standardError.write(Data("api-recorder: could not write the session report: \(error)\n".utf8))
        }
    }

    /// The test id and the package root of `test`.
    package static func testPlace(of test: Test) -> (testID: String, root: String) {
        let filePath = test.sourceLocation.filePath
        // The last `/Tests/` of the path starts the package-relative part.
        let (root, relative): (String, String)
        if let range = filePath.range(of: "/Tests/", options: .backwards) {
            root = String(filePath[..<range.lowerBound])
            relative = String(filePath[filePath.index(after: range.lowerBound)...])
        } else {
            root = FileManager.default.currentDirectoryPath
            relative = test.sourceLocation.fileID
        }
        let suites = test.id.nameComponents.dropLast()
        let name = (suites + [test.name]).joined(separator: "/")
        return ("\(relative)::\(name)", root)
    }
}

extension Trait where Self == RecordingTrait {
    /// Records and replays the test's API calls, in the mode the environment names (replay when unset).
    public static var recording: Self { RecordingTrait() }

    /// Records and replays the test's API calls.
    /// - Parameters:
    ///   - mode: the mode, instead of the environment's.
    ///   - root: the recordings root, instead of the test file's package.
    ///   - globalURLProtocol: install ``RecordingURLProtocol`` globally, for `URLSession.shared`
    ///     and other sessions the test does not set up; requests find their test by `X-Test-ID`,
    ///     or go to the one test scope running.
    ///   - faults: failures injected into the test's exchanges, in order, in every mode
    ///     (`[.status(429, retryAfter: 0, times: 2)]`: two rate limits, then the real answer).
    public static func recording(
        mode: RecordingMode? = nil,
        root: String? = nil,
        globalURLProtocol: Bool = false,
        faults: [Fault] = []
    ) -> Self {
        RecordingTrait(mode: mode, root: root, installsURLProtocolGlobally: globalURLProtocol, faults: faults)
    }
}
