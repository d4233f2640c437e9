import APIRecorder
import ArgumentParser
import Foundation

/// `api-recorder explain FILE|HASH` and `api-recorder explain --request BODY.json --url URL`:
/// the identity that is hashed, and why a recording's name no longer matches it.
struct ExplainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "explain",
        abstract: "Print a request's hash and the exact canonical JSON that is hashed; for a stale recording, why.",
        discussion: """
            Given a recording (a file, or a hash or unique hash prefix under --root): its hash, the \
            canonical JSON hashed, whether its name matches, and, for a stale recording (a name its \
            content no longer hashes to), the rule it was named by, as far as can be told. Given \
            --request and --url instead: the identity of a request that has no recording, and where \
            its recording would be. Exits 1 for a stale recording.
            """
    )

    @Argument(help: "A recording file, or a hash or unique hash prefix.")
    var target: String?

    @Option(
        help:
            "Where to look for a hash, and the root a request's recording would live under (default: the current folder)."
    )
    var root: String = "."

    @Option(help: "A request body (JSON file, - for standard input) to compute the identity of.")
    var request: String?

    @Option(help: "With --request: the URL the recording names (the route's recorded base and the path).")
    var url: String?

    @Option(help: "With --request: the HTTP method.")
    var method = "POST"

    @Option(name: .customLong("test-id"), help: "With --request: the test id.")
    var testID: String?

    @Option(help: "With --request: inference (the default) or http (a plain-HTTP recording).")
    var kind = "inference"

    @OptionGroup var global: GlobalOptions

    func validate() throws {
        if (target == nil) == (request == nil) { throw ValidationError("give a recording, or --request with --url") }
        if request != nil, url == nil { throw ValidationError("--request needs --url") }
        if !["inference", "http"].contains(kind) { throw ValidationError("--kind is inference or http") }
    }

    func run() throws {
        _ = global.makeLogger(label: "api-recorder.explain")
        if let request { return try explainRequest(request) }
        let (path, recording) = try RecordingTarget.load(target ?? "", root: root)
        let name = path.split(separator: "/").last.map(String.init) ?? path
        let expected = (try? recording.fileName()) ?? "\(recording.hash).json"
        var lines: [(String, String)] = [("file", path), ("kind", recording.kind.rawValue)]
        lines.append(("test id", recording.testID ?? "(none)"))
        lines.append(("hash", recording.hash))
        let stale = name != expected
        if stale {
            lines.append(
                ("name", "stale: named \(name), but its content hashes to \(expected), so it can never replay")
            )
            let rules = StaleRecording.namingRules(of: recording, named: name)
            if rules.isEmpty {
                lines.append(
                    (
                        "why",
                        "no known rule gives this name: its request was edited after it was recorded, or another "
                            + "tool with other rules wrote it; `api-recorder verify --fix` renames it to its content"
                    )
                )
            } else {
                for rule in rules { lines.append(("why", rule)) }
            }
        } else {
            lines.append(("name", "matches its content"))
        }
        let folder = RecordingVerifier.relativeFolder(of: path, root: root)
        if let folder, let expectedFolder = StaleRecording.misplacement(of: recording, inFolder: folder) {
            lines.append(
                (
                    "folder",
                    "it lies in \(folder), but its test id files it in \(expectedFolder): look-ups there miss it"
                )
            )
        }
        lines.append(("identity", String(decoding: recording.identity.canonicalBytes, as: UTF8.self)))
        print(labelled(lines), terminator: "")
        if stale { throw ExitCode(1) }
    }

    private func explainRequest(_ file: String) throws {
        let bytes: [UInt8]
        if file == "-" {
            bytes = [UInt8](FileHandle.standardInput.readDataToEndOfFile())
        } else {
            guard let data = FileManager.default.contents(atPath: file) else {
                printError("\(file): cannot read")
                throw ExitCode(1)
            }
            bytes = [UInt8](data)
        }
        let body: JSONValue
        do {
            body = bytes.isEmpty ? .object(JSONObject()) : try JSONValue(parsing: bytes)
        } catch {
            printError("\(file): \(error)")
            throw ExitCode(1)
        }
        let url = self.url ?? ""
        let identity =
            kind == "http"
            ? RequestIdentity.http(testID: testID, url: url, method: method, payload: body)
            : RequestIdentity.inference(method: method, url: url, body: body, testID: testID)
        let store = RecordingStore(root: root)
        var lines: [(String, String)] = [("kind", kind), ("test id", testID ?? "(none)"), ("hash", identity.hash)]
        do {
            let folder = try store.directory(forTestID: testID)
            let found = try store.lookup(hash: identity.hash, testID: testID)
            lines.append(
                ("recording", found.map { "\($0.path) (recorded)" } ?? "\(folder)/\(identity.hash).json (not recorded)")
            )
        } catch {
            lines.append(("recording", "none can be written: \(error.message)"))
        }
        lines.append(("identity", String(decoding: identity.canonicalBytes, as: UTF8.self)))
        print(labelled(lines), terminator: "")
    }
}
