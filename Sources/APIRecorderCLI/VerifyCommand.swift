import APIRecorder
import ArgumentParser
import Logging

/// `api-recorder verify [PATH...]`: checks recording trees against the format.
struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check that recordings parse, are named by their hash, and are byte-canonical.",
        discussion: """
            Folders are walked for .json files inside folders named 'recordings'; files are checked as \
            given. One line per problem, then a summary line. A file with two problems counts in both \
            counts. Temporary files of interrupted writes are listed (and removed by --fix). Exits 1 \
            when any problem remains.
            """
    )

    @Argument(help: "Files or folders to check (default: the current folder).")
    var paths: [String] = []

    @Flag(
        help:
            "Rename misnamed files, rewrite non-canonical ones (atomically), and remove temporary files of interrupted writes."
    )
    var fix = false

    @OptionGroup var global: GlobalOptions

    func run() throws {
        let logger = global.makeLogger(label: "api-recorder.verify")
        let files = RecordingVerifier.recordingFiles(in: paths.isEmpty ? ["."] : paths)
        var counts = (ok: 0, misnamed: 0, notCanonical: 0, unreadable: 0)
        var remaining = 0
        // Verified on every core, a batch at a time (a report holds its parsed recording).
        for batch in files.batches(of: 256) {
            for report in Array(batch).concurrentMap(RecordingVerifier.verify(path:)) {
                let path = report.path
                if report.isOK {
                    counts.ok += 1
                    continue
                }
                for problem in report.problems {
                    switch problem {
                    case .unreadable: counts.unreadable += 1
                    case .misnamed: counts.misnamed += 1
                    case .notCanonical: counts.notCanonical += 1
                    }
                    print("\(path): \(problem)")
                }
                guard fix else {
                    remaining += 1
                    continue
                }
                do {
                    switch try RecordingVerifier.fix(report) {
                    case .fixed(let newPath):
                        print("\(path): fixed -> \(newPath)")
                        logger.info("fixed", metadata: ["path": "\(path)", "now": "\(newPath)"])
                    case .conflict(let existing):
                        remaining += 1
                        print("\(path): not fixed: \(existing) exists with other content")
                    case .notFixable:
                        remaining += 1
                        print("\(path): not fixed: unreadable files need a human")
                    case .unchanged:
                        break
                    }
                } catch {
                    remaining += 1
                    print("\(path): not fixed: \(error)")
                }
            }
        }
        // Interrupted writes (a process killed between writing and renaming) leave temporary files.
        let leftovers = RecordingVerifier.abandonedTemporaryFiles(in: paths.isEmpty ? ["."] : paths)
        var leftoverCount = 0
        for path in leftovers {
            print("\(path): temporary file of an interrupted write")
            guard fix else {
                leftoverCount += 1
                continue
            }
            do {
                try RecordingVerifier.removeTemporaryFile(path)
                print("\(path): removed")
            } catch {
                leftoverCount += 1
                print("\(path): not removed: \(error)")
            }
        }
        var summary =
            "\(files.count) recordings: \(counts.ok) ok, \(counts.misnamed) misnamed, "
            + "\(counts.notCanonical) not canonical, \(counts.unreadable) unreadable"
        if !leftovers.isEmpty {
            summary += "; \(leftovers.count) temporary \(leftovers.count == 1 ? "file" : "files") of interrupted writes"
            if fix { summary += " (\(leftovers.count - leftoverCount) removed)" }
        }
        print(summary)
        remaining += leftoverCount
        if remaining > 0 { throw ExitCode(1) }
    }
}
