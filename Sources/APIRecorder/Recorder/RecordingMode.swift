/// What a recorder does with a request.
///
/// The default is ``replay``: nothing reaches the network unless a mode that records or passes
/// through is asked for.
public enum RecordingMode: String, Sendable, CaseIterable {
    /// Pass every request through; record nothing.
    case live
    /// Always call upstream and (over)write the recording.
    case record
    /// Never call upstream; a missing recording is an error.
    case replay
    /// Replay when a recording exists, otherwise call upstream and record.
    case recordIfMissing = "record-if-missing"

    /// The environment variables the mode is read from, first set wins: api-recorder's own, then
    /// the reference recorder's current and former names.
    public static let environmentVariables = [
        "API_RECORDER_MODE", "OGX_TEST_INFERENCE_MODE", "LLAMA_STACK_TEST_INFERENCE_MODE",
    ]

    /// The mode named in `environment`, or ``replay`` when none is set.
    /// - Throws: ``RecordingModeError`` when a variable holds an unknown mode.
    public static func fromEnvironment(_ environment: [String: String]) throws(RecordingModeError) -> RecordingMode {
        for name in environmentVariables {
            guard let value = environment[name], !value.isEmpty else { continue }
            guard let mode = RecordingMode(rawValue: value.lowercased()) else {
                throw RecordingModeError(variable: name, value: value)
            }
            return mode
        }
        return .replay
    }

    /// Whether requests in this mode may reach the upstream.
    public var callsUpstream: Bool { self != .replay }
}

/// An environment variable that names no mode.
public struct RecordingModeError: Error, Sendable, CustomStringConvertible {
    public let variable: String
    public let value: String
    public var description: String {
        "\(variable)=\(value) is not a recording mode; use one of: "
            + RecordingMode.allCases.map(\.rawValue).joined(separator: ", ")
    }
}
