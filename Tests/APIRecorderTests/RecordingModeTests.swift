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
