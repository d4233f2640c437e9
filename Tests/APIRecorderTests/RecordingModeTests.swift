import APIRecorder
import Testing

@Suite("Recording modes")
struct RecordingModeTests {
    @Test func theDefaultIsReplay() throws {
        #expect(try RecordingMode.fromEnvironment([:]) == .replay)
        #expect(try RecordingMode.fromEnvironment(["API_RECORDER_MODE": ""]) == .replay)
    }

    @Test func ourVariableWinsThenTheReferenceOnes() throws {
        #expect(try RecordingMode.fromEnvironment(["LLAMA_STACK_TEST_INFERENCE_MODE": "record"]) == .record)
        #expect(try RecordingMode.fromEnvironment([
            "OGX_TEST_INFERENCE_MODE": "live", "LLAMA_STACK_TEST_INFERENCE_MODE": "record",
        ]) == .live)
        #expect(try RecordingMode.fromEnvironment([
            "API_RECORDER_MODE": "RECORD-IF-MISSING", "OGX_TEST_INFERENCE_MODE": "live",
        ]) == .recordIfMissing)
    }

    @Test func unknownModesAreErrorsNamingTheVariable() {
        #expect {
            try RecordingMode.fromEnvironment(["OGX_TEST_INFERENCE_MODE": "sometimes"])
        } throws: { error in
            "\(error)".contains("OGX_TEST_INFERENCE_MODE=sometimes is not a recording mode")
        }
    }
}

@Suite("Secret redaction")
struct SecretRedactionTests {
    @Test func bodyKeysAreRemovedAndReplacedUpstream() throws {
        let redaction = SecretRedaction()
        let body: JSONValue = ["query": "q", "api_key": "secret", "apiKey": "secret2"]
        let (recorded, upstream) = redaction.redact(body: body, original: body.compactBytes(), upstreamKey: "real")
        #expect(recorded == ["query": "q"])
        #expect(try JSONValue(parsing: upstream) == ["query": "q", "api_key": "real", "apiKey": "real"])
        let (_, untouched) = redaction.redact(body: body, original: [1, 2, 3], upstreamKey: nil)
        #expect(untouched == [1, 2, 3], "without an upstream key the client's own bytes go upstream")
    }

    @Test func keyQueryParametersAreDropped() {
        let redaction = SecretRedaction()
        #expect(redaction.redact(query: "alt=sse&key=secret") == "alt=sse")
        #expect(redaction.redact(query: "key=secret") == nil)
        #expect(redaction.redact(query: "keyboard=1") == "keyboard=1")
    }
}
