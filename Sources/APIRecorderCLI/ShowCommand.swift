import APIRecorder
import ArgumentParser

/// `api-recorder show FILE|HASH`: a readable summary of one recording.
struct ShowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Summarise a recording: kind, test id, request, and what a client would see.",
        discussion: """
            Given a hash (or a unique prefix of one), the recordings under --root are searched. \
            Streams are assembled as a client assembles them: the text, and each tool call's name \
            and joined argument deltas.
            """
    )

    @Argument(help: "A recording file, or a hash or unique hash prefix.")
    var target: String

    @Option(help: "Where to look for a hash (default: the current folder).")
    var root: String = "."

    @OptionGroup var global: GlobalOptions

    func run() throws {
        _ = global.makeLogger(label: "api-recorder.show")
        let (path, recording) = try RecordingTarget.load(target, root: root)
        print(Self.summary(of: recording, path: path), terminator: "")
    }

    /// The summary text; one "label: value" line each, then the transcript.
    static func summary(of recording: Recording, path: String) -> String {
        var lines: [(String, String)] = [("file", path), ("kind", recording.kind.rawValue)]
        lines.append(("test id", recording.testID ?? "(none: fallback folder)"))
        lines.append(("hash", recording.hash))
        switch recording.kind {
        case .toolInvocation:
            lines.append(("provider", recording.request["provider"]?.stringValue ?? "?"))
            lines.append(("tool", recording.request["tool_name"]?.stringValue ?? "?"))
            lines.append(("arguments", compact(recording.request["kwargs"] ?? .null)))
        case .inference, .http:
            lines.append(("method", recording.method ?? "?"))
            lines.append(("endpoint", recording.endpoint ?? pathOf(recording.url ?? "")))
            lines.append(("url", recording.url ?? "?"))
            lines.append(("model", recording.model ?? "(none)"))
        }
        if let chunks = recording.chunks {
            lines.append(("streaming", "yes, \(chunks.count) \(recording.kind == .http ? "lines" : "chunks")"))
        } else {
            lines.append(("streaming", "no"))
        }
        if let status = recording.status { lines.append(("status", String(status))) }
        if let exception = recording.exception {
            let status = exception.statusCode.map { " (HTTP \($0))" } ?? ""
            lines.append(("error", "\(exception.type ?? "?")\(status): \(exception.message ?? "")"))
        }
        if recording.kind == .toolInvocation, !recording.isException {
            let result = compact(ResponseNormalization.untyped(recording.body))
            lines.append(("result", result.count > 300 ? String(result.prefix(300)) + "…" : result))
        }
        let transcript = Transcript(recording)
        if !transcript.text.isEmpty { lines.append(("text", compact(.string(transcript.text)))) }
        var output =
            lines.map { label, value in
                label.padding(toLength: 10) + " " + value
            }.joined(separator: "\n") + "\n"
        if !transcript.toolCalls.isEmpty {
            output += "tool calls:\n"
            for call in transcript.toolCalls {
                let id = call.id.map { " (\($0))" } ?? ""
                output += "  [\(call.index)] \(call.name)\(id) \(call.arguments)\n"
            }
        }
        return output
    }

    private static func compact(_ value: JSONValue) -> String {
        String(decoding: value.compactBytes(), as: UTF8.self)
    }

    private static func pathOf(_ url: String) -> String {
        guard let schemeEnd = url.firstRange(of: "://") else { return url }
        let rest = url[schemeEnd.upperBound...]
        return rest.firstIndex(of: "/").map { String(rest[$0...]) } ?? "/"
    }
}

extension String {
    /// `label:` padded to `length`, for the commands' "label: value" lines.
    func padding(toLength length: Int) -> String {
        count >= length ? self + ":" : self + ":" + String(repeating: " ", count: length - count)
    }
}
