import APIRecorder
import ArgumentParser

/// `api-recorder hash PATH...`: the request hash each recording's content implies.
struct HashCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hash",
        abstract: "Print the request hash implied by each recording's content, as '<hash>  <path>'.",
        discussion: """
            Paths are recording files, or folders whose `recordings` folders are walked (as verify \
            walks them). Only each file's request is built (the response is checked to be JSON, \
            not materialised), on every core; the lines come out in the order of the paths.
            """
    )

    @Argument(help: "Recording files, or folders to walk.")
    var paths: [String]

    @OptionGroup var global: GlobalOptions

    func run() throws {
        _ = global.makeLogger(label: "api-recorder.hash")
        let files = RecordingVerifier.recordingFiles(in: paths)
        let lines = Self.hashLines(files)
        var output = ""
        var failed = false
        for (index, line) in lines.enumerated() {
            switch line {
            case .success(let hash):
                output += "\(hash)  \(files[index])\n"
            case .failure(let error):
                failed = true
                print(output, terminator: "")
                output = ""
                printError(error.description)
            }
            if output.utf8.count > 1 << 16 {
                print(output, terminator: "")
                output = ""
            }
        }
        print(output, terminator: "")
        if failed { throw ExitCode(1) }
    }

    /// The hash of each file, in order, computed on every core.
    private static func hashLines(_ files: [String]) -> [Result<String, StoreError>] {
        files.concurrentMap { file in
            Result { () throws(StoreError) in try RequestIdentity(contentsOfRecordingFile: file).hash }
        }
    }
}
