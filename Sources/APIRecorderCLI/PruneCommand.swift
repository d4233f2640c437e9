import APIRecorder
import ArgumentParser
import Foundation
import Logging

/// `api-recorder prune REPORT...`: the recordings no session used, from session reports.
struct PruneCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prune",
        abstract: "List (and with --delete, remove) the recordings that none of the session reports used.",
        discussion: """
            Reports come from `serve --report-file PATH`, or from Swift tests run with \
            API_RECORDER_REPORT=PATH; give one per parallel shard. A recording is used when a request \
            replayed it (every file of a model-list union served counts) or it was written. Only files \
            under the reports' root are considered. Refuses, unless --force, when the reports name \
            different roots or any report has misses (a session that missed did not run everything it \
            needs). Exits 1 when it refuses.
            """
    )

    @Argument(help: "Session report files (JSON).")
    var reports: [String]

    @Flag(help: "Delete the unused recordings (default: only list them).")
    var delete = false

    @Flag(help: "Prune even when the reports disagree on the root or have misses.")
    var force = false

    @OptionGroup var global: GlobalOptions

    func validate() throws {
        if reports.isEmpty { throw ValidationError("give at least one session report") }
    }

    func run() throws {
        let logger = global.makeLogger(label: "api-recorder.prune")
        var loaded: [(file: String, report: SessionReport)] = []
        for file in reports {
            guard let data = FileManager.default.contents(atPath: file),
                let value = try? JSONValue(parsing: [UInt8](data)),
                let report = SessionReport(json: value)
            else {
                printError("\(file): not a session report (write one with serve --report-file)")
                throw ExitCode(1)
            }
            loaded.append((file, report))
        }
        let roots = Set(loaded.map(\.report.root))
        if roots.count > 1, !force {
            printError(
                "the reports name different roots (\(roots.sorted().joined(separator: ", "))); "
                    + "prune one root at a time, or --force"
            )
            throw ExitCode(1)
        }
        let missed = loaded.filter { $0.report.misses > 0 }
        if !missed.isEmpty, !force {
            printError(
                "refusing to prune: \(missed.map { "\($0.file) has \($0.report.misses) misses" }.joined(separator: "; ")); "
                    + "a session that missed did not use everything it needs (record the misses first, or --force)"
            )
            throw ExitCode(1)
        }
        var removed = 0
        var unusedTotal = 0
        for root in roots.sorted() {
            let used = Set(loaded.filter { $0.report.root == root }.flatMap(\.report.used))
            let files = RecordingVerifier.recordingFiles(in: [root])
            let unused = files.filter { !used.contains(RecordingVerifier.relativePath($0, root: root)) }
            unusedTotal += unused.count
            for path in unused {
                let relative = RecordingVerifier.relativePath(path, root: root)
                guard delete else {
                    print("unused: \(relative)")
                    continue
                }
                do {
                    try FileManager.default.removeItem(atPath: path)
                    removed += 1
                    print("deleted: \(relative)")
                    logger.info("deleted", metadata: ["path": "\(path)"])
                } catch {
                    print("not deleted: \(relative): \(error.localizedDescription)")
                }
            }
            print("\(root): \(files.count) recordings, \(used.count) used, \(unused.count) unused")
        }
        if delete { print("\(removed) of \(unusedTotal) unused recordings deleted") }
    }
}
