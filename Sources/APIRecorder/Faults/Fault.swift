/// A failure injected into an exchange on purpose, to test what a client does when its provider
/// rate-limits, overloads, stalls or cuts a stream. Faults are applied by the pipeline in every
/// mode, are never recorded, and are counted.
///
/// One fault may combine its parts: `delay` runs first; then `status` or `malformed` answer in
/// place of the exchange (nothing is forwarded or recorded); otherwise the exchange runs and
/// `cutAfter` and `eventDelay` shape its stream.
public struct Fault: Sendable, Equatable, CustomStringConvertible {
    /// An error status (400 to 599), answered in the provider's own error shape (429, 500, 503, Anthropic's 529).
    public var status: Int?
    /// The `Retry-After` header of an error status, in seconds.
    public var retryAfter: Int?
    /// A delay before the first byte of the answer.
    public var delay: Duration?
    /// Cuts a stream (the connection closes) after this many events; a whole body, after half of it.
    public var cutAfter: Int?
    /// A delay before each event of a stream after the first.
    public var eventDelay: Duration?
    /// Answers 200 with a body that is not valid JSON (a stream: an event that is not).
    public var malformed: Bool
    /// How many matching requests the fault applies to; `nil`: every one.
    public var times: Int?

    public init(
        status: Int? = nil,
        retryAfter: Int? = nil,
        delay: Duration? = nil,
        cutAfter: Int? = nil,
        eventDelay: Duration? = nil,
        malformed: Bool = false,
        times: Int? = nil
    ) {
        self.status = status
        self.retryAfter = retryAfter
        self.delay = delay
        self.cutAfter = cutAfter
        self.eventDelay = eventDelay
        self.malformed = malformed
        self.times = times
    }

    /// An error status (with `Retry-After` seconds), for the next `times` requests.
    public static func status(_ status: Int, retryAfter: Int? = nil, times: Int? = nil) -> Fault {
        Fault(status: status, retryAfter: retryAfter, times: times)
    }

    /// A delay before the first byte.
    public static func delay(_ delay: Duration, times: Int? = nil) -> Fault { Fault(delay: delay, times: times) }

    /// A stream cut after `events` events.
    public static func cut(after events: Int, times: Int? = nil) -> Fault { Fault(cutAfter: events, times: times) }

    /// A delay between the events of a stream.
    public static func eventDelay(_ delay: Duration, times: Int? = nil) -> Fault {
        Fault(eventDelay: delay, times: times)
    }

    /// A body that is not valid JSON.
    public static func malformed(times: Int? = nil) -> Fault { Fault(malformed: true, times: times) }

    /// Whether the fault answers in place of the exchange.
    package var replacesAnswer: Bool { status != nil || malformed }

    /// Whether the fault does anything.
    var isEmpty: Bool { status == nil && delay == nil && cutAfter == nil && eventDelay == nil && !malformed }

    /// The header form: `status=429; retry-after=2; times=2`.
    public var description: String {
        var parts: [String] = []
        if let status { parts.append("status=\(status)") }
        if let retryAfter { parts.append("retry-after=\(retryAfter)") }
        if let delay { parts.append("delay=\(Self.milliseconds(delay))ms") }
        if let cutAfter { parts.append("cut-after=\(cutAfter)") }
        if let eventDelay { parts.append("event-delay=\(Self.milliseconds(eventDelay))ms") }
        if malformed { parts.append("malformed") }
        if let times { parts.append("times=\(times)") }
        return parts.joined(separator: "; ")
    }

    static func milliseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}

/// A fault spec that cannot be understood.
public struct FaultSpecError: Error, Sendable, CustomStringConvertible {
    public let description: String
}

extension Fault {
    /// The keys of the header form, and the JSON form's names for them.
    private static let keys: [(header: String, json: String)] = [
        ("status", "status"), ("retry-after", "retry_after"), ("delay", "delay_ms"), ("cut-after", "cut_after"),
        ("event-delay", "event_delay_ms"), ("malformed", "malformed"), ("times", "times"),
    ]

    /// Parses the header form, `key=value` parts separated by `;`: `status=429; retry-after=2;
    /// times=2`, `delay=300ms` (`ms` or `s`; a bare number is milliseconds), `cut-after=3`,
    /// `event-delay=50ms`, `malformed`.
    public init(spec: String) throws(FaultSpecError) {
        self.init()
        for part in spec.split(separator: ";") {
            let trimmed = part.trimmingWhitespace()
            if trimmed.isEmpty { continue }
            // `=` or `=3` has no key: `split` would drop the empty piece, so cut at the first `=`.
            let equals = trimmed.firstIndex(of: "=")
            let key = String(trimmed[..<(equals ?? trimmed.endIndex)]).trimmingWhitespace().lowercased()
            let value = equals.map { String(trimmed[trimmed.index(after: $0)...]).trimmingWhitespace() }
            guard !key.isEmpty else {
                throw FaultSpecError(description: "a fault part has no key: \"\(trimmed)\"; write key=value")
            }
            switch key {
            case "status": status = try Self.integer(value, key, in: 400...599)
            case "retry-after": retryAfter = try Self.integer(value, key, in: 0...86_400)
            case "delay": delay = try Self.duration(value, key)
            case "cut-after": cutAfter = try Self.integer(value, key, in: 0...1_000_000)
            case "event-delay": eventDelay = try Self.duration(value, key)
            case "times": times = try Self.integer(value, key, in: 1...1_000_000)
            case "malformed":
                guard value == nil || value == "true" else {
                    throw FaultSpecError(description: "malformed takes no value")
                }
                malformed = true
            default:
                throw FaultSpecError(
                    description:
                        "unknown fault key \"\(key)\"; use \(Self.keys.map(\.header).joined(separator: ", "))"
                )
            }
        }
        try validate()
    }

    /// Parses the JSON form: `{"status": 429, "retry_after": 2, "times": 2}`, `{"delay_ms":
    /// 300}`, `{"cut_after": 3}`, `{"event_delay_ms": 50}`, `{"malformed": true}`, or the header
    /// form as `{"spec": "status=429; times=2"}`.
    public init(json: JSONValue) throws(FaultSpecError) {
        self.init()
        guard case .object(let object) = json else {
            throw FaultSpecError(description: "a fault is an object, such as {\"status\": 429, \"times\": 2}")
        }
        // {"spec": "status=429; times=2"}: the header form, in JSON.
        if object.count == 1, let spec = object["spec"]?.stringValue {
            self = try Fault(spec: spec)
            return
        }
        for (key, value) in object.members {
            func integer(_ range: ClosedRange<Int>) throws(FaultSpecError) -> Int {
                guard let number = value.intValue, range.contains(number) else {
                    throw FaultSpecError(description: "\(key) must be an integer in \(range)")
                }
                return number
            }
            switch key {
            case "status": status = try integer(400...599)
            case "retry_after": retryAfter = try integer(0...86_400)
            case "delay_ms": delay = .milliseconds(try integer(0...600_000))
            case "cut_after": cutAfter = try integer(0...1_000_000)
            case "event_delay_ms": eventDelay = .milliseconds(try integer(0...600_000))
            case "times": times = try integer(1...1_000_000)
            case "malformed":
                guard let flag = value.boolValue else {
                    throw FaultSpecError(description: "malformed must be true or false")
                }
                malformed = flag
            default:
                throw FaultSpecError(
                    description: "unknown fault key \"\(key)\"; use \(Self.keys.map(\.json).joined(separator: ", "))"
                )
            }
        }
        try validate()
    }

    /// The JSON form.
    public var json: JSONValue {
        var object = JSONObject()
        if let status { object["status"] = .integer(status) }
        if let retryAfter { object["retry_after"] = .integer(retryAfter) }
        if let delay { object["delay_ms"] = .integer(Int(Self.milliseconds(delay))) }
        if let cutAfter { object["cut_after"] = .integer(cutAfter) }
        if let eventDelay { object["event_delay_ms"] = .integer(Int(Self.milliseconds(eventDelay))) }
        if malformed { object["malformed"] = true }
        if let times { object["times"] = .integer(times) }
        return .object(object)
    }

    private func validate() throws(FaultSpecError) {
        if isEmpty {
            throw FaultSpecError(
                description: "the fault does nothing: give status, delay, cut-after, event-delay or malformed"
            )
        }
        if status != nil, malformed { throw FaultSpecError(description: "status and malformed cannot be combined") }
        if retryAfter != nil, status == nil { throw FaultSpecError(description: "retry-after needs a status") }
    }

    private static func integer(
        _ value: String?,
        _ key: String,
        in range: ClosedRange<Int>
    ) throws(FaultSpecError)
        -> Int
    {
        guard let value, let number = Int(value), range.contains(number) else {
            throw FaultSpecError(description: "\(key) must be an integer in \(range), not \(value ?? "nothing")")
        }
        return number
    }

    /// `300ms`, `1.5s`, or `300` (milliseconds).
    private static func duration(_ value: String?, _ key: String) throws(FaultSpecError) -> Duration {
        guard let value else { throw FaultSpecError(description: "\(key) needs a duration, such as 300ms") }
        let lowered = value.lowercased()
        let number: Double?
        let scale: Double
        if lowered.hasSuffix("ms") {
            number = Double(lowered.dropLast(2))
            scale = 1
        } else if lowered.hasSuffix("s") {
            number = Double(lowered.dropLast())
            scale = 1000
        } else {
            number = Double(lowered)
            scale = 1
        }
        guard let number, number >= 0, number * scale <= 600_000 else {
            throw FaultSpecError(description: "\(key) must be a duration up to 600s, such as 300ms, not \(value)")
        }
        return .milliseconds(Int64((number * scale).rounded()))
    }
}

extension StringProtocol {
    fileprivate func trimmingWhitespace() -> String {
        let scalars = unicodeScalars.drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }
        return String(String.UnicodeScalarView(scalars.reversed()))
    }
}
