import APIRecorder
import ArgumentParser

/// `api-recorder hash FILE...`: the request hash each recording's content implies.
struct HashCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hash",
        abstract: "Print the request hash implied by each recording's content, as '<hash>  <path>'."
    )

    @Argument(help: "Recording files.")
    var files: [String]

    @OptionGroup var global: GlobalOptions

    func run() throws {
        _ = global.makeLogger(label: "api-recorder.hash")
        var failed = false
        for path in files {
            do {
                let recording = try Recording(contentsOfFile: path)
                print("\(recording.hash)  \(path)")
            } catch {
                failed = true
                printError(error.description)
            }
        }
        if failed { throw ExitCode(1) }
    }
}
