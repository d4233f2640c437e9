import APIRecorder
import ArgumentParser
import Foundation

/// `api-recorder tool PROVIDER NAME --kwargs JSON -- COMMAND...`: one tool call recorded or
/// replayed from a shell, through the same `Recorder.invokeTool` as Swift's `recordedTool`, so
/// it writes the same bytes.
struct ToolCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tool",
        abstract: "Record or replay one tool call; the command is the tool, run only when recording.",
        discussion: """
            Replays the recorded result of PROVIDER.NAME with these arguments (--kwargs) under the \
            test id, or, when recording (or live), runs COMMAND with the arguments as JSON on its \
            standard input, takes its standard output as the result (JSON; other text is stored as a \
            JSON string), and records it in the reference's tool format. A command that exits non-zero \
            is recorded as the error it raised (type CommandFailed, its standard error as the message). \
            Prints the result as JSON on standard output; a recorded error goes to standard error with \
            exit status 1, and so does a replay miss, with its diagnostics.
            """
    )

    @Argument(help: "The tool's provider (tavily, db, ...).")
    var provider: String

    @Argument(help: "The tool's name (web_search, query, ...).")
    var name: String

    @Option(help: "The call's arguments, a JSON object (default: {}).")
    var kwargs = "{}"

    @Option(name: .customLong("test-id"), help: "The test id: the folder the recording goes to.")
    var testID: String?

    @OptionGroup var recording: RecordingOptions

    @Option(name: .customLong("type-name"), help: "Store the result typed, as this __type__.")
    var typeName: String?

    @Argument(parsing: .postTerminator, help: "The tool: a command and its arguments, after --.")
    var command: [String] = []

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let logger = global.makeLogger(label: "api-recorder.tool")
        let arguments: JSONValue
        do {
            arguments = try JSONValue(parsing: kwargs)
        } catch {
            throw ValidationError("--kwargs is not valid JSON: \(error)")
        }
        guard case .object = arguments else { throw ValidationError("--kwargs must be a JSON object") }
        let mode = try recording.resolvedMode(environment: ProcessInfo.processInfo.environment)
        if mode.callsUpstream, command.isEmpty {
            throw ValidationError("\(mode.rawValue) mode runs the tool: give its command after --")
        }
        let store = RecordingStore(
            root: recording.root,
            fallbackDirectories: recording.fallbackDirectories,
            logger: logger
        )
        let recorder = Recorder(store: store, mode: mode, logger: logger)
        let input = arguments.compactBytes()
        let command = command
        do {
            let result = try await recorder.invokeTool(
                provider: provider,
                name: name,
                arguments: arguments,
                testID: testID,
                typeName: typeName
            ) { try Self.runTool(command, input: input) }
            print(String(decoding: result.compactBytes(), as: UTF8.self))
        } catch let error as RecorderError {
            printError(error.message)
            throw ExitCode.failure
        } catch let error as CommandFailed {
            // As a replay of its recording will show it.
            printError("CommandFailed: \(error)")
            throw ExitCode.failure
        } catch {
            printError("\(error)")
            throw ExitCode.failure
        }
    }

    /// A command that failed, as a tool error.
    struct CommandFailed: Error, CustomStringConvertible {
        let description: String
    }

    /// Runs the tool command with `input` on its standard input: its output as JSON, or its
    /// failure as ``CommandFailed``.
    private static func runTool(_ command: [String], input: [UInt8]) throws -> JSONValue {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = command
        let stdin = Pipe()
        let stdout = Pipe()
        let stderr = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        // Read standard error while the tool runs, so that neither pipe fills up and blocks it.
        nonisolated(unsafe) var errorBytes = Data()
        let errorDone = DispatchSemaphore(value: 0)
        Thread {
            errorBytes = stderr.fileHandleForReading.readDataToEndOfFile()
            errorDone.signal()
        }
        .start()
        // A tool that does not read its input may exit first: the write then fails (EPIPE), it
        // must not kill this process (SIGPIPE).
        signal(SIGPIPE, SIG_IGN)
        try? stdin.fileHandleForWriting.write(contentsOf: Data(input))
        try? stdin.fileHandleForWriting.close()
        let output = stdout.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        errorDone.wait()
        guard process.terminationStatus == 0 else {
            let message = String(decoding: errorBytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            throw CommandFailed(
                description: message.isEmpty ? "\(command[0]) exited with status \(process.terminationStatus)" : message
            )
        }
        let text = String(decoding: output, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return (try? JSONValue(parsing: text)) ?? .string(text)
    }
}
