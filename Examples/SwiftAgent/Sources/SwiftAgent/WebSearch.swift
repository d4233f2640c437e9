import Foundation

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// One result of a web search.
public struct SearchHit: Codable, Sendable, Equatable {
    public var title: String
    public var url: String
    public var content: String
    public var score: Double?

    public init(title: String, url: String, content: String, score: Double? = nil) {
        self.title = title
        self.url = url
        self.content = content
        self.score = score
    }
}

/// The `web_search` tool: Tavily's search API (`POST /search`), through the session it is given.
public struct WebSearch: Sendable {
    public static let defaultBaseURL = URL(string: "https://api.tavily.com")!

    public var baseURL: URL
    public var apiKey: String
    public var session: URLSession
    /// How many results to ask for.
    public var maxResults: Int

    public init(baseURL: URL = Self.defaultBaseURL, apiKey: String, session: URLSession = .shared, maxResults: Int = 3)
    {
        self.baseURL = baseURL
        self.apiKey = apiKey
        self.session = session
        self.maxResults = maxResults
    }

    /// The top results for `query`.
    public func search(query: String) async throws -> [SearchHit] {
        var request = URLRequest(url: baseURL.appendingPathComponent("search"))
        request.httpMethod = "POST"
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.setValue("Bearer \(apiKey)", forHTTPHeaderField: "Authorization")
        request.httpBody = try JSONEncoder.sorted.encode(SearchRequest(query: query, maxResults: maxResults))
        let (data, response) = try await session.data(for: request)
        if let http = response as? HTTPURLResponse, !(200..<300).contains(http.statusCode) {
            throw HTTPStatusError(status: http.statusCode, body: String(decoding: data, as: UTF8.self))
        }
        return try JSONDecoder().decode(SearchResponse.self, from: data).results
    }

    /// The tool as the model sees it.
    public static let definition = ToolDefinition(
        name: "web_search",
        description: "Search the web.",
        parameters: JSONSchema(
            properties: ["query": .init(type: "string", description: "What to search for.")],
            required: ["query"]
        )
    )

    /// Results as text for the model: numbered, each with its title, address and content.
    public static func render(_ hits: [SearchHit]) -> String {
        if hits.isEmpty { return "No results." }
        return hits.enumerated()
            .map { index, hit in "\(index + 1). \(hit.title) (\(hit.url))\n\(hit.content)" }
            .joined(separator: "\n\n")
    }

    private struct SearchRequest: Encodable {
        var query: String
        var maxResults: Int

        enum CodingKeys: String, CodingKey {
            case query
            case maxResults = "max_results"
        }
    }

    private struct SearchResponse: Decodable {
        var results: [SearchHit]
    }
}
