import Testing

@testable import APIRecorder

/// The pipeline reuses the preparation of a request sent again, and only of one that is the same
/// in everything `prepare` reads.
@Suite("Preparation cache")
struct PreparationCacheTests {
    static let body: JSONValue = ["model": "m", "messages": [["role": "user", "content": "hi"]]]

    @Test func aRequestSentAgainIsPreparedOnceAndCarriesItsOwnHeaders() throws {
        let cache = PreparationCache()
        let adapter = OpenAIAdapter()
        let first = exchangeRequest("/chat/completions", body: Self.body)
        var again = first
        again.headers = [("Content-Type", "application/json"), ("Authorization", "Bearer sk-other")]
        let prepared = try cache.prepare(first, with: adapter)
        let reused = try cache.prepare(again, with: adapter)
        #expect(cache.count == 1)
        #expect(reused.hash == prepared.hash)
        #expect(reused.hash == (try adapter.prepare(again)).hash)
        // What goes upstream is this request's, not the first one's.
        #expect(reused.request.headers.map(\.value) == ["application/json", "Bearer sk-other"])
    }

    @Test func anyDifferenceThatPrepareReadsIsANewEntry() throws {
        let cache = PreparationCache()
        let adapter = OpenAIAdapter()
        let base = exchangeRequest("/chat/completions", body: Self.body)
        var variants = [base]
        variants.append(exchangeRequest("/chat/completions", body: ["model": "m", "messages": []]))
        variants.append(exchangeRequest("/completions", body: Self.body))
        variants.append(exchangeRequest("/chat/completions", body: Self.body, query: "page=2"))
        variants.append(exchangeRequest("/chat/completions", body: Self.body, testID: "tests/other.py::test_x"))
        variants.append(exchangeRequest("/chat/completions", body: Self.body, testID: nil))
        variants.append(exchangeRequest("/chat/completions", body: Self.body, base: "http://other.test/v1"))
        variants.append(exchangeRequest("/chat/completions", body: Self.body, upstreamKey: "sk-upstream"))
        variants.append(exchangeRequest("/chat/completions", body: Self.body, method: "PUT"))
        for request in variants {
            let cached = try cache.prepare(request, with: adapter)
            let fresh = try adapter.prepare(request)
            #expect(cached.hash == fresh.hash)
            #expect(cached.upstreamBody == fresh.upstreamBody)
            #expect(cached.upstreamQuery == fresh.upstreamQuery)
        }
        #expect(cache.count == variants.count)
    }

    @Test func adaptersWithOtherConfigurationsDoNotShareEntries() throws {
        let cache = PreparationCache()
        let request = exchangeRequest("/chat/completions", body: ["model": "m", "password": "hunter2"])
        var strict = OpenAIAdapter()
        strict.redaction.names = ["password"]
        var lax = OpenAIAdapter()
        lax.redaction.names = []
        let redacted = try cache.prepare(request, with: strict)
        let kept = try cache.prepare(request, with: lax)
        #expect(redacted.recordedBody["password"] == nil)
        #expect(kept.recordedBody["password"] == "hunter2")
        #expect(cache.count == 2)
    }

    @Test func adaptersThatDoNotOptInAndLargeBodiesArePreparedEveryTime() throws {
        let cache = PreparationCache()
        let mcp = MCPAdapter()
        #expect(mcp.preparationFingerprint == nil)
        let call: JSONValue = ["jsonrpc": "2.0", "id": 1, "method": "tools/list"]
        _ = try cache.prepare(exchangeRequest("/mcp", body: call), with: mcp)
        let large: JSONValue = ["model": "m", "input": .string(String(repeating: "x", count: 70_000))]
        _ = try cache.prepare(exchangeRequest("/embeddings", body: large), with: OpenAIAdapter())
        #expect(cache.count == 0)
    }

    @Test func aBodyThatFailsToPrepareIsNotKept() {
        let cache = PreparationCache()
        var request = exchangeRequest("/chat/completions")
        request.body = Array(#"{"model": "#.utf8)
        #expect(throws: ExchangeError.self) { try cache.prepare(request, with: OpenAIAdapter()) }
        #expect(cache.count == 0)
    }
}
