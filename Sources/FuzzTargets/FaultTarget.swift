import APIRecorder
import PythonJSON

/// The fault specs: `Fault(spec:)` (the `X-Recorder-Fault` header form) on the input as text, and
/// `Fault(json:)` on the input when it parses as JSON.
///
/// For any input, nothing crashes, and:
/// - a fault that is accepted reads back as itself from its header form (`description`) and from
///   its JSON form (`json`);
/// - `Fault(json: {"spec": text})` accepts exactly what `Fault(spec: text)` accepts, as the same fault.
public func fuzzFault(_ data: UnsafeRawBufferPointer) throws(InvariantViolation) {
    let bytes = data.fuzzBytes
    let text = String(decoding: bytes, as: UTF8.self)
    let fromSpec = try? Fault(spec: text)
    if let fault = fromSpec { try checkRoundTrips(fault, readBy: "Fault(spec:)") }

    let wrapped = try? Fault(json: ["spec": .string(text)])
    guard wrapped == fromSpec else {
        throw InvariantViolation(
            "Fault(json: {\"spec\": text}) gave \(wrapped.map(String.init(describing:)) ?? "an error") but "
                + "Fault(spec: text) gave \(fromSpec.map(String.init(describing:)) ?? "an error")"
        )
    }

    if let json = try? JSONValue(parsing: bytes), let fault = try? Fault(json: json) {
        try checkRoundTrips(fault, readBy: "Fault(json:)")
    }
}

private func checkRoundTrips(_ fault: Fault, readBy reader: String) throws(InvariantViolation) {
    let header = fault.description
    let fromHeader: Fault
    do {
        fromHeader = try Fault(spec: header)
    } catch {
        throw InvariantViolation("\(reader) gave a fault whose header form \"\(header)\" is refused: \(error)")
    }
    guard fromHeader == fault else {
        throw InvariantViolation("\(reader) gave \(header), whose header form reads back as \(fromHeader)")
    }
    let json = fault.json
    let fromJSON: Fault
    do {
        fromJSON = try Fault(json: json)
    } catch {
        throw InvariantViolation(
            "\(reader) gave a fault whose JSON form \(excerpt(json.compactBytes())) is refused: \(error)"
        )
    }
    guard fromJSON == fault else {
        throw InvariantViolation("\(reader) gave \(header), whose JSON form reads back as \(fromJSON)")
    }
}
