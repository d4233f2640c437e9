import Foundation
import FuzzTargets
import Testing

/// Every committed fuzz input (`Fuzz/corpus/TARGET/`) through its target's entry point, the same
/// code libFuzzer runs, so that an input that once crashed or broke an invariant stays fixed.
///
/// A crash of the code under test ends the test process; to see which file, run the corpus
/// runner: `swift run --scratch-path .build-fuzz APIRecorderFuzz TARGET Fuzz/corpus/TARGET`.
@Suite("Fuzz corpus")
struct FuzzCorpusTests {
    static let corpus = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz/corpus")

    @Test(arguments: FuzzTarget.allCases)
    func everyCommittedInputKeepsTheInvariants(_ target: FuzzTarget) throws {
        let folder = Self.corpus.appendingPathComponent(target.rawValue).path
        let files = FuzzCorpus.files(in: [folder])
        #expect(files.count >= 10, "the corpus of \(target.rawValue) has \(files.count) files, in \(folder)")
        for file in files {
            if let violation = try FuzzCorpus.run(target, file: file) {
                Issue.record("\(file.dropFirst(folder.count + 1)): \(violation)")
            }
        }
    }
}
