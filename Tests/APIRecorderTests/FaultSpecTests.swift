import APIRecorder
import Testing

/// The fault specs of the `X-Recorder-Fault` header and of `POST /__recorder/faults`.
@Suite("Fault specs")
struct FaultSpecTests {
    @Test func theHeaderFormReadsEveryKind() throws {
        #expect(try Fault(spec: "status=429; retry-after=2; times=2") == .status(429, retryAfter: 2, times: 2))
        #expect(try Fault(spec: "delay=300ms") == .delay(.milliseconds(300)))
        #expect(try Fault(spec: "delay=1.5s").delay == .milliseconds(1500))
        #expect(try Fault(spec: "delay=20").delay == .milliseconds(20))
        #expect(
            try Fault(spec: " cut-after = 3 ;event-delay=50ms ") == Fault(cutAfter: 3, eventDelay: .milliseconds(50))
        )
        #expect(try Fault(spec: "malformed").malformed)
        #expect(try Fault(spec: "STATUS=529").status == 529)
    }

    @Test func theJSONFormHasTheSameKeysAndRoundTrips() throws {
        let json: JSONValue = ["status": 429, "retry_after": 0, "times": 2]
        let fault = try Fault(json: json)
        #expect(fault == .status(429, retryAfter: 0, times: 2))
        #expect(fault.json == json)
        #expect(
            try Fault(json: ["delay_ms": 300, "cut_after": 3, "event_delay_ms": 50]).description
                == "delay=300ms; cut-after=3; event-delay=50ms"
        )
        #expect(try Fault(json: ["spec": "status=500"]) == .status(500))
        #expect(try Fault(spec: fault.description) == fault)
    }

    @Test(arguments: [
        "status=abc", "status=99", "status=100", "status=204", "status=304", "status=399", "delay=soon",
        "retry-after=2", "times=0", "explode", "", "status=429; malformed",
        "malformed=yes",
        // Parts with no key: these once stopped the process (an index into an empty split).
        "=", "==", "=429", " = ", "status=429; =", ";=;", "delay=1e309s", "delay=nan", "delay=-0.5s", "delay=inf",
        "status=99999999999999999999", "times=-1", "cut-after=\u{0}", "é=1",
    ])
    func badSpecsAreRefusedWithAReason(_ spec: String) {
        #expect(throws: FaultSpecError.self) { try Fault(spec: spec) }
    }

    @Test func badJSONIsRefused() {
        for json: JSONValue in [
            [], ["status": "429"], ["delay": 3], ["times": 2], ["malformed": 1], ["spec": "="], ["spec": ";"],
            ["status": 1e300], ["status": 429.5], ["delay_ms": -1], "status=429", nil,
        ] {
            #expect(throws: FaultSpecError.self) { try Fault(json: json) }
        }
    }
}
