import APIRecorder
import ArgumentParser
import Foundation

/// Writes one line to standard error.
func printError(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}

/// A recording named on the command line: a file, or a hash or unique hash prefix searched
/// under a root.
enum RecordingTarget {
    /// The file `target` names.
    /// - Throws: `ExitCode(1)`, after saying why, when a hash matches no file or several.
    static func resolve(_ target: String, root: String) throws -> String {
        let isHashLike = target.count >= 4 && target.allSatisfy { $0.isHexDigit } && !target.contains("/")
        guard isHashLike else { return target }
        let matches = RecordingVerifier.recordingFiles(in: [root]).filter { path in
            let name = path.split(separator: "/").last.map(String.init) ?? path
            let hashPart = name.hasPrefix("models-") ? String(name.dropFirst("models-".count)) : name
            return hashPart.hasPrefix(target)
        }
        if matches.count == 1 { return matches[0] }
        if matches.isEmpty {
            printError("no recording under \(root) has a hash starting with \(target)")
        } else {
            printError("\(target) is ambiguous under \(root):\n" + matches.map { "  \($0)" }.joined(separator: "\n"))
        }
        throw ExitCode(1)
    }

    /// The file `target` names, and its recording.
    /// - Throws: `ExitCode(1)`, after saying why, when there is none or it cannot be read.
    static func load(_ target: String, root: String) throws -> (path: String, recording: Recording) {
        let path = try resolve(target, root: root)
        do {
            return (path, try Recording(contentsOfFile: path))
        } catch {
            printError(error.description)
            throw ExitCode(1)
        }
    }
}

/// Lines of `label value`, the labels padded to one width.
func labelled(_ lines: [(String, String)], width: Int = 10) -> String {
    lines.map { label, value in label.padding(toLength: width) + " " + value }.joined(separator: "\n") + "\n"
}
