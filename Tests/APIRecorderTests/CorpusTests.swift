import APIRecorder
import Foundation
import TestSupport
import Testing

/// Every real recording in ../shared must hash to its name and round-trip byte for byte.
@Suite("Reference recordings", .enabled(if: Shared.isAvailable, Shared.skipMessage))
struct CorpusTests {
    static let seedPath = Shared.root.appendingPathComponent(
        "fixtures/seed/tests/integration/responses/recordings/aa152c7d111f58cc0fe23fc14264ffc74e4938b686527481b55a207e1d20cb90.json"
    ).path

    static var corpusFiles: [String] {
        RecordingVerifier.recordingFiles(in: [Shared.root.appendingPathComponent("corpus-sample").path])
    }

    @Test func corpusHasEveryKind() {
        let files = Self.corpusFiles
        #expect(files.count >= 82)
        let kinds = Set(files.compactMap { try? Recording(contentsOfFile: $0).kind })
        #expect(kinds == [.inference, .toolInvocation, .http])
        #expect(files.contains { $0.contains("/models-") })
    }

    @Test func everyCorpusFileHashesToItsNameAndRoundTrips() throws {
        for path in Self.corpusFiles + [Self.seedPath] {
            let bytes = try readBytes(path)
            let recording = try Recording(parsing: bytes)
            let name = URL(fileURLWithPath: path).lastPathComponent
            #expect(try recording.fileName() == name, "\(path)")
            #expect(Bool(recording.fileBytes() == bytes), "round trip differs: \(path)")
            // The skipping fast path agrees with the full parse.
            #expect(try RequestIdentity(recordingFile: bytes) == recording.identity, "\(path)")
        }
    }

    @Test func seedHashesToItsKnownName() throws {
        let recording = try Recording(contentsOfFile: Self.seedPath)
        #expect(recording.hash == "aa152c7d111f58cc0fe23fc14264ffc74e4938b686527481b55a207e1d20cb90")
        #expect(recording.kind == .inference)
        #expect(recording.isStreaming)
        #expect(recording.chunks?.count == 18)
    }

    @Test func seedTranscriptHasTwoWeatherCalls() throws {
        let transcript = Transcript(try Recording(contentsOfFile: Self.seedPath))
        #expect(transcript.toolCalls.map(\.name) == ["get_weather", "get_weather"])
        #expect(
            transcript.toolCalls.map(\.arguments) == [
                #"{"location": "San Francisco, USA"}"#, #"{"location": "Los Angeles, USA"}"#,
            ]
        )
    }

    /// Building a recording from its parts gives the reference's exact bytes, for every kind.
    @Test func recordingsRebuiltFromTheirPartsAreByteIdentical() throws {
        var rebuiltCount = 0
        for path in Self.corpusFiles {
            let original = try Recording(contentsOfFile: path)
            guard original.json.index(of: "id_normalization_mapping") != nil, !original.isException else { continue }
            let outcome: RecordedOutcome = original.isStreaming ? .stream(original.chunks!) : .body(original.body)
            let rebuilt: Recording
            switch original.kind {
            case .inference:
                rebuilt = Recording.inference(
                    testID: original.testID,
                    method: original.method!,
                    url: original.url!,
                    body: original.request["body"]!,
                    endpoint: original.endpoint!,
                    model: original.request["model"]!.stringValue!,
                    providerMetadata: original.request["provider_metadata"]?.objectValue,
                    outcome: outcome
                )
            case .toolInvocation:
                rebuilt = Recording.toolInvocation(
                    testID: original.testID,
                    provider: original.request["provider"]!.stringValue!,
                    toolName: original.request["tool_name"]!.stringValue!,
                    kwargs: original.request["kwargs"]!,
                    outcome: outcome
                )
            case .http:
                rebuilt = Recording.http(
                    testID: original.testID,
                    url: original.url!,
                    method: original.method!,
                    payload: original.request["payload"]!,
                    status: original.status,
                    outcome: outcome
                )
            }
            #expect(Bool(rebuilt.fileBytes() == original.fileBytes()), "rebuilt bytes differ: \(path)")
            rebuiltCount += 1
        }
        #expect(rebuiltCount > 60)
    }

    @Test func exceptionRecordingsExposeTheirError() throws {
        let exceptions = Self.corpusFiles.compactMap { try? Recording(contentsOfFile: $0) }.filter(\.isException)
        #expect(!exceptions.isEmpty)
        for recording in exceptions {
            let exception = try #require(recording.exception)
            #expect(exception.category != nil)
            #expect(exception.type != nil)
            // Rebuilding the response from the typed view gives the same bytes.
            let rebuilt = Recording.inference(
                testID: recording.testID,
                method: recording.method!,
                url: recording.url!,
                body: recording.request["body"]!,
                endpoint: recording.endpoint!,
                model: recording.request["model"]!.stringValue!,
                providerMetadata: recording.request["provider_metadata"]?.objectValue,
                outcome: .exception(exception)
            )
            #expect(Bool(rebuilt.fileBytes() == recording.fileBytes()), "\(recording.hash)")
        }
    }
}
