public import ArgumentParser
public import Logging

/// `api-recorder`: record and replay LLM and tool API calls for deterministic tests.
@main
struct APIRecorderCommand: AsyncParsableCommand {
    /// The release version: what `--version` prints and the wheel is named with.
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "api-recorder",
        abstract: "Record and replay LLM and tool API calls, in the llama-stack/OGX recording format.",
        discussion: """
            Exit codes: 0 success; 1 a recording is wrong or could not be read (verify, hash, show); \
            64 the command line is wrong; run exits with its command's status.
            """,
        version: version,
        subcommands: [
            ServeCommand.self, RunCommand.self, HashCommand.self, VerifyCommand.self, ShowCommand.self,
            ExplainCommand.self, PruneCommand.self, ToolCommand.self, DriftCommand.self,
        ]
    )
}

/// Options every subcommand shares.
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .warning

    /// Sends swift-log output to standard error at the chosen level, and returns a logger.
    func makeLogger(label: String) -> Logger {
        let level = logLevel
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        return Logger(label: label)
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
