public import APIRecorder

/// A provider's usual set-up under its name (`--provider openai`): the public base URL its
/// recordings name, its API rules, the variable its key is read from, and the variables its
/// official SDK reads for a base URL and a key, so that `api-recorder run` and the pytest plugin
/// can point unmodified clients at the proxy.
///
/// The base-URL variables were read from each SDK's source: `openai` reads `OPENAI_BASE_URL`,
/// `anthropic` `ANTHROPIC_BASE_URL`, `ollama` `OLLAMA_HOST` (a path after the port is kept),
/// `google-genai` `GOOGLE_GEMINI_BASE_URL` (the Developer API; Vertex AI has its own hosts);
/// `tavily-python` reads none (its `api_base_url` argument only).
public struct ProviderPreset: Sendable, Equatable {
    /// The route name, and what `--provider` takes.
    public let name: String
    /// The base URL requests are forwarded to and recordings name, whatever `--upstream` says.
    public let publicBase: String
    public let adapter: AdapterKind
    /// Where the real key is read from, in the SDK's own order of preference.
    public let keyVariables: [String]
    /// The variables the official SDK reads for its base URL.
    public let baseURLVariables: [String]
    /// The variable a placeholder key goes in when no key variable is set, so that a client
    /// constructed without arguments works against recordings (`nil`: the SDK needs no key).
    public let placeholderKeyVariable: String?

    public static let openAI = ProviderPreset(
        name: "openai",
        publicBase: "https://api.openai.com/v1",
        adapter: .openai,
        keyVariables: ["OPENAI_API_KEY"],
        baseURLVariables: ["OPENAI_BASE_URL"],
        placeholderKeyVariable: "OPENAI_API_KEY"
    )
    public static let anthropic = ProviderPreset(
        name: "anthropic",
        publicBase: "https://api.anthropic.com",
        adapter: .http,
        keyVariables: ["ANTHROPIC_API_KEY"],
        baseURLVariables: ["ANTHROPIC_BASE_URL"],
        placeholderKeyVariable: "ANTHROPIC_API_KEY"
    )
    /// google-genai prefers `GOOGLE_API_KEY` when both are set.
    public static let gemini = ProviderPreset(
        name: "gemini",
        publicBase: "https://generativelanguage.googleapis.com",
        adapter: .gemini,
        keyVariables: ["GOOGLE_API_KEY", "GEMINI_API_KEY"],
        baseURLVariables: ["GOOGLE_GEMINI_BASE_URL"],
        placeholderKeyVariable: "GEMINI_API_KEY"
    )
    public static let ollama = ProviderPreset(
        name: "ollama",
        publicBase: "http://127.0.0.1:11434",
        adapter: .ollama,
        keyVariables: [],
        baseURLVariables: ["OLLAMA_HOST"],
        placeholderKeyVariable: nil
    )
    public static let tavily = ProviderPreset(
        name: "tavily",
        publicBase: "https://api.tavily.com",
        adapter: .http,
        keyVariables: ["TAVILY_API_KEY"],
        baseURLVariables: [],
        placeholderKeyVariable: "TAVILY_API_KEY"
    )

    /// Every preset, in the order `--provider all` adds them.
    public static let all: [ProviderPreset] = [.openAI, .anthropic, .gemini, .ollama, .tavily]

    public static func named(_ name: String) -> ProviderPreset? {
        all.first { $0.name == name }
    }

    /// The variable the real key is read from: the first of ``keyVariables`` set in
    /// `environment`, else the first of them.
    public func keyVariable(in environment: [String: String]) -> String? {
        keyVariables.first { environment[$0] != nil } ?? keyVariables.first
    }

    /// The preset's route: forwarded to `upstream` (a local stand-in, say) or else the public
    /// base, and always recorded as the public base.
    public func route(forwardingTo upstream: String? = nil, environment: [String: String]) -> ProxyRoute {
        var route = ProxyRoute(
            name: name,
            upstream: upstream ?? publicBase,
            recordedBase: publicBase,
            keyEnvironmentVariable: keyVariable(in: environment),
            adapter: adapter
        )
        route.preset = self
        return route
    }
}

/// The environment a client process needs to reach a proxy at `proxyURL`: what `api-recorder run`
/// exports to its command and `GET /__recorder/environment` answers (for the pytest plugin).
public struct ClientEnvironment: Sendable {
    /// Variables to set, in a stable order: `API_RECORDER_URL`, `API_RECORDER_MODE`,
    /// `API_RECORDER_<ROUTE>_URL` for every route, and each preset's SDK base-URL variables.
    public var variables: [(name: String, value: String)]
    /// Key variables to set only where they are unset, to ``PlaceholderKey``, so that SDKs that
    /// insist on a key construct: replays need none, and the pipeline never forwards it (a
    /// request that would record with it gets a 401 saying which variable to set).
    public var placeholders: [(name: String, value: String)]
    /// Each route's base URL on the proxy, by route name.
    public var routes: [(name: String, url: String)]

    public static let placeholderKey = PlaceholderKey.value

    public init(proxyURL: String, configuration: ProxyConfiguration) {
        var variables = [
            (name: "API_RECORDER_URL", value: proxyURL),
            (name: "API_RECORDER_MODE", value: configuration.mode.rawValue),
        ]
        var placeholders: [(name: String, value: String)] = []
        var routes: [(name: String, url: String)] = []
        for route in configuration.routes {
            let url = proxyURL + "/" + route.name
            routes.append((route.name, url))
            variables.append((Self.routeVariable(route.name), url))
            guard let preset = route.preset else { continue }
            for name in preset.baseURLVariables { variables.append((name, url)) }
            if let placeholder = preset.placeholderKeyVariable,
                !preset.keyVariables.contains(where: { configuration.environment[$0] != nil })
            {
                placeholders.append((placeholder, Self.placeholderKey))
            }
        }
        self.variables = variables
        self.placeholders = placeholders
        self.routes = routes
    }

    /// `API_RECORDER_<NAME>_URL`, the name upper-cased with anything but letters and digits as `_`.
    public static func routeVariable(_ routeName: String) -> String {
        let name = routeName.uppercased().map { $0.isASCII && ($0.isLetter || $0.isNumber) ? $0 : "_" }
        return "API_RECORDER_" + String(name) + "_URL"
    }

    /// `environment` with the variables set and the placeholders filled in where unset.
    public func applied(to environment: [String: String]) -> [String: String] {
        var result = environment
        for (name, value) in variables { result[name] = value }
        for (name, value) in placeholders where result[name] == nil { result[name] = value }
        return result
    }

    /// As JSON: `{"variables": {...}, "placeholders": {...}, "routes": {...}}`.
    public var json: JSONValue {
        func object(_ pairs: [(name: String, value: String)]) -> JSONValue {
            var object = JSONObject()
            for (name, value) in pairs { object[name] = .string(value) }
            return .object(object)
        }
        return [
            "variables": object(variables), "placeholders": object(placeholders),
            "routes": object(routes.map { ($0.name, $0.url) }),
        ]
    }
}
