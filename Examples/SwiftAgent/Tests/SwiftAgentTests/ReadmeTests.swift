import APIRecorderTesting
import Foundation
import SwiftAgent
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The README's example, as it is printed there (with its two constants).
let modelURL = Endpoints.model
let tavilyKey = Endpoints.tavilyKey
let tavilyURL = Endpoints.tavily

@Suite(.recording)  // replays from Tests/<Target>/recordings/; API_RECORDER_MODE=record-if-missing records
struct ReadmeTests {
    @Test func answersWithASearch() async throws {
        let session = RecordingScope.current!.urlSession()  // URLSession, streams included
        let search = WebSearch(baseURL: tavilyURL, apiKey: tavilyKey, session: session)  // Tavily, over HTTP
        let agent = Agent(baseURL: modelURL, model: "gemma-3-270m", session: session, webSearch: search)
        let run = try await agent.runWithTools("Who won the 2022 FIFA World Cup?")  // chat + tool call + search
        let hits = try await recordedTool(provider: "tavily", name: "web_search", arguments: ["query": "Lyon"]) {
            try await search.search(query: "Lyon")
        }
        #expect(run.messages.last?.role == "assistant" && !hits.isEmpty)
    }
}
