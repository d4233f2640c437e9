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
        #expect(
            try RecordingMode.fromEnvironment([
                "OGX_TEST_INFERENCE_MODE": "live", "LLAMA_STACK_TEST_INFERENCE_MODE": "record",
            ]) == .live
        )
        #expect(
            try RecordingMode.fromEnvironment([
                "API_RECORDER_MODE": "RECORD-IF-MISSING", "OGX_TEST_INFERENCE_MODE": "live",
            ]) == .recordIfMissing
        )
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
    let redaction = SecretRedaction()

    @Test func credentialsAreRemovedAtAnyDepthAndReplacedUpstream() throws {
        let body: JSONValue = [
            "query": "q", "api_key": "secret", "apiKey": "secret2",
            "extra_body": ["api_key": "secret3", "options": [["access_token": "secret4", "top_k": 3]]],
            "max_tokens": 5, "token": 7,
        ]
        let (recorded, upstream) = redaction.redact(body: body, original: body.compactBytes(), upstreamKey: "real")
        #expect(recorded == ["query": "q", "extra_body": ["options": [["top_k": 3]]], "max_tokens": 5, "token": 7])
        #expect(
            try JSONValue(parsing: upstream) == [
                "query": "q", "api_key": "real", "apiKey": "real",
                "extra_body": ["api_key": "real", "options": [["access_token": "real", "top_k": 3]]],
                "max_tokens": 5, "token": 7,
            ]
        )
        let (_, untouched) = redaction.redact(body: body, original: [1, 2, 3], upstreamKey: nil)
        #expect(untouched == [1, 2, 3], "without an upstream key the client's own bytes go upstream")
        let clean: JSONValue = ["query": "q"]
        #expect(redaction.redact(body: clean, original: [9], upstreamKey: "real").upstream == [9])
    }

    @Test func namesAreComparedWithoutCaseDashesOrUnderscores() {
        for name in ["api_key", "apiKey", "API-KEY", "x-api-key", "Access_Token", "client_secret", "key", "token"] {
            #expect(redaction.isSecret(name), "\(name)")
        }
        for name in ["keyboard", "max_tokens", "tokens", "monkey", "model", "messages"] {
            #expect(!redaction.isSecret(name), "\(name)")
        }
    }

    @Test func credentialQueryParametersAreDroppedAndReplacedUpstream() {
        #expect(redaction.redact(query: "alt=sse&key=secret", upstreamKey: nil) == ("alt=sse", "alt=sse&key=secret"))
        #expect(redaction.redact(query: "key=secret", upstreamKey: "real") == (nil, "key=real"))
        #expect(redaction.redact(query: "keyboard=1", upstreamKey: "real") == ("keyboard=1", "keyboard=1"))
        #expect(
            redaction.redact(query: "page=2&api_key=a&ACCESS_TOKEN=b&api%5Fkey=c&token=d", upstreamKey: "k/+")
                == ("page=2", "page=2&api_key=k%2F%2B&ACCESS_TOKEN=k%2F%2B&api%5Fkey=k%2F%2B&token=k%2F%2B")
        )
        #expect(redaction.redact(query: nil, upstreamKey: "real") == (nil, nil))
    }
}
