import APIRecorder
import Foundation
import TestSupport
import Testing

@Suite("The recordings store")
struct RecordingStoreTests {
    static func chat(testID: String?, content: String = "hi", reply: String = "hello") -> Recording {
        let body: JSONValue = ["model": "m", "messages": [["role": "user", "content": .string(content)]]]
        let identity = RequestIdentity.inference(
            method: "POST",
            url: "http://127.0.0.1:8080/v1/chat/completions",
            body: body,
            testID: testID
        )
        let response = ResponseNormalization.typed(
            "openai.types.chat.chat_completion.ChatCompletion",
            data: [
                "id": "chatcmpl-123", "created": 1_700_000_000, "object": "chat.completion",
                "choices": [["index": 0, "message": ["role": "assistant", "content": .string(reply)]]],
            ],
            requestHash: identity.hash
        )
        return Recording.inference(
            testID: testID,
            method: "POST",
            url: "http://127.0.0.1:8080/v1/chat/completions",
            body: body,
            endpoint: "/v1/chat/completions",
            model: "m",
            outcome: .body(response)
        )
    }

    static func models(_ ids: [String], testID: String? = nil) -> Recording {
        let body: JSONValue = .array(
            ids.map { id in
                ResponseNormalization.typed(
                    "openai.types.model.Model",
                    data: ["id": .string(id), "created": 5, "object": "model", "owned_by": "me"],
                    requestHash: ""
                )
            }
        )
        return Recording.inference(
            testID: testID,
            method: "GET",
            url: "http://127.0.0.1:8080/v1/models",
            body: [:],
            endpoint: "/v1/models",
            model: "",
            outcome: .body(body)
        )
    }

    @Test(arguments: [
        ("tests/integration/inference/test_basic.py::test_chat[txt=x]", "tests/integration/inference/recordings"),
        ("Tests/MyAppTests/ChatTests.swift::ChatTests/streams()", "Tests/MyAppTests/recordings"),
        ("test_top.py::test", "recordings"),
        ("./tests//a/test_x.py::t", "tests/a/recordings"),
    ])
    func testIDsMapToFoldersBesideTheTestFile(testID: String, folder: String) throws {
        #expect(try RecordingLayout.relativeDirectory(forTestID: testID) == folder)
    }

    @Test func idsWithoutDoubleColonUseTheFallback() throws {
        #expect(try RecordingLayout.relativeDirectory(forTestID: nil) == nil)
        #expect(try RecordingLayout.relativeDirectory(forTestID: "MyAppTests/ChatTests/streams()") == nil)
        let store = RecordingStore(root: "/repo", fallbackDirectory: "tests/integration/common/recordings")
        #expect(try store.directory(forTestID: "plain id") == "/repo/tests/integration/common/recordings")
    }

    @Test(arguments: [
        "../outside/test_x.py::t", "tests/../../etc/test_x.py::t", "/etc/passwd::t", "tests/a\0b/test.py::t",
        "tests\\..\\..\\x.py::t",
        // A combining mark, a variation selector or a joiner after `/` or `..` makes one grapheme
        // with it, which `Character` comparisons do not see as `/` or `..`; the file system does.
        "../\u{301}x/y.py::t", "/\u{FE0F}/x.py::t", "/\u{200D}/x.py::t", "\\\u{301}/x.py::t",
        "a/..\u{FE0F}/../../b.py::t",
    ])
    func testIDsCannotEscapeTheRoot(testID: String) throws {
        let directory = try TemporaryDirectory()
        let store = RecordingStore(root: directory.path)
        #expect(throws: StoreError.self) { try store.directory(forTestID: testID) }
        #expect(throws: StoreError.self) { try store.save(Self.chat(testID: testID)) }
        #expect(throws: StoreError.self) { try store.lookup(hash: String(repeating: "a", count: 64), testID: testID) }
        #expect(directory.files().isEmpty)
    }

    @Test func savesBesideTheTestAndFindsTheTestFolderFirst() throws {
        let directory = try TemporaryDirectory()
        let store = RecordingStore(root: directory.path)
        let testID = "tests/unit/test_chat.py::test_hi"
        let recording = Self.chat(testID: testID)
        let path = try store.save(recording)
        #expect(path == "\(directory.path)/tests/unit/recordings/\(recording.hash).json")
        #expect(try readBytes(path) == recording.fileBytes())
        let found = try #require(try store.lookup(hash: recording.hash, testID: testID))
        #expect(found.recording == recording)
        #expect(found.path == path)
        // Another test's folder is not searched, the fallback is.
        #expect(try store.lookup(hash: recording.hash, testID: "tests/other/test_x.py::t") == nil)
        let setUp = Self.chat(testID: nil, content: "set-up")
        try store.save(setUp)
        #expect(
            try store.lookup(hash: setUp.hash, testID: testID)?.path
                == "\(directory.path)/recordings/\(setUp.hash).json"
        )
        #expect(
            try store.searchedDirectories(forTestID: testID) == [
                "\(directory.path)/tests/unit/recordings", "\(directory.path)/recordings",
            ]
        )
    }

    @Test func lookupsNoticeFilesChangedByAnotherProcess() throws {
        let directory = try TemporaryDirectory()
        let store = RecordingStore(root: directory.path)
        let first = Self.chat(testID: nil, reply: "first")
        let path = try store.save(first)
        #expect(try store.lookup(hash: first.hash, testID: nil)?.recording == first)
        // Same request, other answer, written behind the store's back.
        let second = Self.chat(testID: nil, reply: "second, longer")
        try directory.write("recordings/\(first.hash).json", second.fileBytes())
        #expect(try store.lookup(hash: first.hash, testID: nil)?.recording == second)
        try FileManager.default.removeItem(atPath: path)
        #expect(try store.lookup(hash: first.hash, testID: nil) == nil)
    }

    @Test func corruptFilesAreReportedWithTheirPath() throws {
        let directory = try TemporaryDirectory()
        let store = RecordingStore(root: directory.path)
        let hash = String(repeating: "b", count: 64)
        let path = try directory.write("recordings/\(hash).json", Array("{\"request\": {".utf8))
        #expect {
            try store.lookup(hash: hash, testID: nil)
        } throws: { error in
            guard let error = error as? StoreError else { return false }
            return error.code == .corruptRecording && error.path == path && error.description.contains("byte 13")
        }
    }

    @Test func modelListsAreUnionedByID() throws {
        let directory = try TemporaryDirectory()
        let store = RecordingStore(root: directory.path)
        let serverA = Self.models(["b-model", "a-model"])
        let serverB = Self.models(["c-model", "a-model"])
        let pathA = try store.save(serverA)
        let pathB = try store.save(serverB)
        #expect(pathA != pathB)
        #expect(URL(fileURLWithPath: pathA).lastPathComponent.hasPrefix("models-\(serverA.hash)-"))
        #expect(try ModelList.digest(of: serverA).count == 8)
        let union = try #require(try store.lookupModelList(hash: serverA.hash, testID: "tests/x/test_y.py::t"))
        let ids = union.recording.body.arrayValue?.compactMap { ResponseNormalization.untyped($0)["id"]?.stringValue }
        #expect(ids == ["a-model", "b-model", "c-model"])
    }

    @Test func digestMatchesTheReferenceFormula() throws {
        // sha256("a-model|b-model")[:8], as Python computes it.
        let recording = Self.models(["b-model", "a-model", "a-model"])
        #expect(
            try ModelList.digest(of: recording)
                == String(RequestIdentity.sha256Hex(Array("a-model|b-model".utf8)).prefix(8))
        )
    }

    @Test func concurrentWritersNeverLeaveATornFile() async throws {
        let directory = try TemporaryDirectory()
        let store = RecordingStore(root: directory.path)
        // Same request, answers of very different sizes: a torn write would mix them.
        let variants = (0..<8).map { Self.chat(testID: nil, reply: String(repeating: "\($0)", count: 1 + $0 * 20_000)) }
        let path = "\(directory.path)/recordings/\(variants[0].hash).json"
        let valid = Set(variants.map { $0.fileBytes() })
        try await withThrowingTaskGroup(of: Void.self) { group in
            for variant in variants {
                group.addTask { for _ in 0..<25 { try store.save(variant) } }
            }
            group.addTask {
                for _ in 0..<400 {
                    if let bytes = try? readBytes(path), !bytes.isEmpty {
                        #expect(valid.contains(bytes), "a reader saw a torn file")
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(valid.contains(try readBytes(path)))
        #expect(directory.files() == ["recordings/\(variants[0].hash).json"], "temporary files left behind")
    }

    @Test func responseNormalizationFollowsTheReference() {
        let data: JSONObject = [
            "id": "x", "created": 123, "created_at": "2025-01-01", "total_duration": 5, "eval_duration": nil,
            "object": "chat.completion",
        ]
        let normalized = ResponseNormalization.normalize(data, requestHash: "0123456789abcdef")
        #expect(normalized["id"] == "rec-0123456789ab")
        #expect(normalized["created"] == 0)
        #expect(normalized["created_at"] == "1970-01-01T00:00:00.000000Z")
        #expect(normalized["total_duration"] == 0)
        #expect(normalized["eval_duration"] == .null)
        let model: JSONObject = ["id": "gpt", "created": 5, "object": "model"]
        #expect(ResponseNormalization.normalize(model, requestHash: "ff") == model)
    }
}
