/// The fuzz targets: each takes any bytes, must never crash, and checks invariants that hold for
/// every input. A broken invariant is thrown as an ``InvariantViolation``; the libFuzzer entry point
/// (`APIRecorderFuzz` built with `-DFUZZING`) turns it into a crash, and the corpus runner and
/// `FuzzCorpusTests` report it. See docs/fuzzing.md.
public enum FuzzTarget: String, CaseIterable, Sendable {
    /// ``fuzzJSON(_:)``: the PythonJSON parser and writers.
    case json
    /// ``fuzzRecording(_:)``: a recording file read as the store reads it, and its request identity.
    case recording
    /// ``fuzzFault(_:)``: the fault specs, header form and JSON form.
    case fault
    /// ``fuzzTestID(_:)``: the test-id rules that turn an id into a recordings folder.
    case testid

    /// Runs one input through the target.
    /// - Throws: ``InvariantViolation`` when an invariant does not hold for `data`.
    public func run(_ data: UnsafeRawBufferPointer) throws(InvariantViolation) {
        switch self {
        case .json: try fuzzJSON(data)
        case .recording: try fuzzRecording(data)
        case .fault: try fuzzFault(data)
        case .testid: try fuzzTestID(data)
        }
    }
}

/// An invariant that an input broke: a finding, not noise.
public struct InvariantViolation: Error, Sendable, CustomStringConvertible {
    public let description: String

    init(_ description: String) {
        self.description = description
    }
}

extension UnsafeRawBufferPointer {
    /// The input as bytes, in place: no copy, so AddressSanitizer sees reads past its end.
    var fuzzBytes: UnsafeBufferPointer<UInt8> {
        UnsafeBufferPointer(start: baseAddress?.assumingMemoryBound(to: UInt8.self), count: count)
    }
}

/// A short, printable excerpt of bytes for a violation's message.
func excerpt(_ bytes: some Collection<UInt8>, limit: Int = 120) -> String {
    var text = ""
    for byte in bytes.prefix(limit) {
        if byte >= 0x20 && byte < 0x7F && byte != UInt8(ascii: "\\") {
            text.unicodeScalars.append(Unicode.Scalar(byte))
        } else {
            let hex = String(byte, radix: 16)
            text += "\\x" + (hex.count == 1 ? "0" + hex : hex)
        }
    }
    return bytes.count > limit ? text + "… (\(bytes.count) bytes)" : text
}
