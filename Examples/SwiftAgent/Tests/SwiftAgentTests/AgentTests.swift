import APIRecorderTesting
import Foundation
import SwiftAgent
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Where the tests' APIs live. The recordings were made against a local model server on port
/// 8080 and a Tavily stand-in (see `record.sh`); replay needs neither, nor any network.
enum Endpoints {
    static let environment = ProcessInfo.processInfo.environment
    /// The OpenAI-compatible model server (`SWIFT_AGENT_BASE_URL` overrides it for recording).
    static let model = URL(string: environment["SWIFT_AGENT_BASE_URL"] ?? "http://127.0.0.1:8080/v1")!
    static let modelName = "gemma-3-270m"
    /// Tavily (`TAVILY_BASE_URL` overrides it for recording).
    static let tavily = URL(string: environment["TAVILY_BASE_URL"] ?? "https://api.tavily.com")!
    /// Only used when recording: the key is a header, which recordings never keep.
    static let tavilyKey = environment["TAVILY_API_KEY"] ?? "tvly-unused-in-replay"
}

/// Each test runs in its own recording scope (`.recording`): in replay mode (the default) its
/// API calls are answered from `recordings/` beside this file; with `API_RECORDER_MODE=record`
/// they reach the real servers and are written there.
@Suite(.recording)
struct AgentTests {
    /// An agent whose every request (chat and web search) goes through a session that the
    /// running test records and replays.
    func makeAgent(maxTokens: Int = 64) -> Agent {
        let session = RecordingScope.current!.urlSession()
        return Agent(
            baseURL: Endpoints.model,
            model: Endpoints.modelName,
            session: session,
            webSearch: WebSearch(baseURL: Endpoints.tavily, apiKey: Endpoints.tavilyKey, session: session),
            maxTokens: maxTokens
        )
    }

    @Test func ask() async throws {
        let answer = try await makeAgent().ask("What is the capital of France?")
        #expect(!answer.isEmpty)
    }

    @Test func stream() async throws {
        var chunks: [String] = []
        for try await chunk in makeAgent().stream("Count from one to ten.") {
            chunks.append(chunk)
        }
        // A replayed stream comes back chunk by chunk, as it was recorded.
        #expect(chunks.count > 3)
        #expect(!chunks.joined().isEmpty)
    }

    @Test func toolLoop() async throws {
        let question = "Who won the 2022 FIFA World Cup?"
        let run = try await makeAgent(maxTokens: 96).runWithTools(question)
        // The model had to call web_search first; its results went back as a tool message.
        let search = try #require(run.searches.first)
        #expect(!search.query.isEmpty)
        #expect(search.hits.count == 3)
        #expect(search.hits.contains { $0.content.contains("Argentina") })
        let toolMessage = try #require(run.messages.first { $0.role == "tool" })
        #expect(toolMessage.content?.contains("Lusail Stadium") == true)
        #expect(run.messages.last?.role == "assistant")
        #expect(run.messages.last?.toolCalls == nil)
    }

    /// The in-process tool API: a Swift call recorded as a tool invocation (provider, name and
    /// arguments), not as HTTP. Recording runs the closure; replay returns its recorded result
    /// without running it, so the session inside need not be a recording one.
    @Test func searchAsRecordedTool() async throws {
        let search = WebSearch(
            baseURL: Endpoints.tavily,
            apiKey: Endpoints.tavilyKey,
            session: URLSession(configuration: .ephemeral)
        )
        let arguments = SearchArguments(query: "2022 FIFA World Cup winner", maxResults: search.maxResults)
        let hits: [SearchHit] = try await recordedTool(provider: "tavily", name: "web_search", arguments: arguments) {
            try await search.search(query: arguments.query)
        }
        #expect(hits.count == 3)
        #expect(hits.first?.title == "2022 FIFA World Cup final - Wikipedia")
    }
}

/// The arguments a `web_search` tool call is recorded under.
struct SearchArguments: Encodable {
    var query: String
    var maxResults: Int

    enum CodingKeys: String, CodingKey {
        case query
        case maxResults = "max_results"
    }
}
