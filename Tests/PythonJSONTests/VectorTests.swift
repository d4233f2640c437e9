import Foundation
import PythonJSON
import TestSupport
import Testing

@Suite("Python-exact writers against the shared vectors", .enabled(if: Shared.isAvailable, Shared.skipMessage))
struct FileWriterVectorTests {
    @Test func everyFileWriterVectorMatches() throws {
        let lines = try Shared.lines("vectors/file-writer.jsonl")
        #expect(lines.count > 300)
        var failures = 0
        for (number, line) in lines.enumerated() {
            let vector = try JSONValue(parsing: line)
            let input = try #require(vector["input"]?.stringValue)
            let written = try #require(vector["written"]?.stringValue)
            let value = try JSONValue(parsing: input)
            let output = String(decoding: value.fileBytes(), as: UTF8.self)
            if !output.utf8.elementsEqual(written.utf8) {
                failures += 1
                Issue.record(
                    "file-writer line \(number + 1) differs:\n\(output.prefix(400))\n---\n\(written.prefix(400))"
                )
                if failures > 5 { return }
            }
        }
    }
}
