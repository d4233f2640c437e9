import APIRecorder
import APIRecorderProxy
import ArgumentParser

/// The route flags, shared by `serve`, `run` and `drift`, so that the same recordings map to the
/// same routes: `--provider`, `--upstream`, `--recorded-base`, `--upstream-key`, `--adapter`.
struct RouteOptions: ParsableArguments {
    @Option(
        name: .customLong("provider"),
        help: ArgumentHelp(
            "A provider preset: openai, anthropic, gemini, ollama, tavily, or all. Repeatable (default for run: all).",
            discussion:
                "Each adds the route /NAME to the provider's public base URL, with its API rules and its usual key variable for --upstream-key. --upstream NAME=URL then changes only where requests go: the recordings still name the public base URL."
        )
    )
    var providers: [String] = []

    @Option(name: .customLong("upstream"), help: "A route: NAME=URL forwards /NAME/rest to URL/rest. Repeatable.")
    var upstreams: [String] = []

    @Option(
        name: .customLong("recorded-base"),
        help: "NAME=URL: the base URL the route's recordings name (default: the upstream, or a preset's public base)."
    )
    var recordedBases: [String] = []

    @Option(
        name: .customLong("upstream-key"),
        help:
            "NAME=ENV_VAR: send $ENV_VAR upstream for the route, in place of the client's key (its key header, or Bearer) and of credentials in its query and body."
    )
    var upstreamKeys: [String] = []

    @Option(
        name: .customLong("adapter"),
        help:
            "NAME=auto|openai|ollama|http|mcp|gemini: the API rules for the route (default auto: /api/... as Ollama, ...:generateContent as Gemini, /messages and /interactions as plain HTTP, else OpenAI)."
    )
    var adapters: [String] = []

    /// The routes of `--provider` and `--upstream`, by name, with `--recorded-base`,
    /// `--upstream-key` and `--adapter` applied.
    func routes(environment: [String: String], allPresetsByDefault: Bool) throws -> [ProxyRoute] {
        let upstreamURLs = try pairs(upstreams, option: "--upstream")
        let bases = try pairs(recordedBases, option: "--recorded-base")
        let keys = try pairs(upstreamKeys, option: "--upstream-key")
        let adapterKinds = try pairs(adapters, option: "--adapter")
        for (name, url) in upstreamURLs where !(url.hasPrefix("http://") || url.hasPrefix("https://")) {
            throw ValidationError("--upstream \(name)=\(url): the URL must start with http:// or https://")
        }

        var chosen: [String: ProviderPreset] = [:]
        for preset in try presets(allByDefault: allPresetsByDefault) { chosen[preset.name] = preset }
        let names = Set(chosen.keys).union(upstreamURLs.keys)
        for (option, named) in [("--recorded-base", bases), ("--upstream-key", keys), ("--adapter", adapterKinds)] {
            for name in named.keys where !names.contains(name) {
                throw ValidationError("\(option) \(name)=...: there is no --upstream \(name)=URL or --provider \(name)")
            }
        }
        return try names.sorted().map { name in
            let preset = chosen[name]
            var adapter = preset?.adapter ?? .auto
            if let kind = adapterKinds[name] {
                guard let parsed = AdapterKind(rawValue: kind) else {
                    throw ValidationError(
                        "--adapter \(name)=\(kind): use one of \(AdapterKind.allCases.map(\.rawValue).joined(separator: ", "))"
                    )
                }
                adapter = parsed
            }
            var route = ProxyRoute(
                name: name,
                upstream: upstreamURLs[name] ?? preset?.publicBase ?? "",
                recordedBase: bases[name] ?? preset?.publicBase,
                keyEnvironmentVariable: keys[name] ?? preset?.keyVariable(in: environment),
                adapter: adapter
            )
            route.preset = preset
            return route
        }
    }

    /// The presets `--provider` names (`all` for every one).
    private func presets(allByDefault: Bool) throws -> [ProviderPreset] {
        if providers.isEmpty { return allByDefault ? ProviderPreset.all : [] }
        var chosen: [ProviderPreset] = []
        for name in providers {
            if name == "all" {
                chosen += ProviderPreset.all
            } else if let preset = ProviderPreset.named(name) {
                chosen.append(preset)
            } else {
                throw ValidationError(
                    "--provider \(name): use one of \(ProviderPreset.all.map(\.name).joined(separator: ", ")), or all"
                )
            }
        }
        return chosen
    }

    private func pairs(_ values: [String], option: String) throws -> [String: String] {
        var result: [String: String] = [:]
        for value in values {
            guard let equals = value.firstIndex(of: "="), equals != value.startIndex else {
                throw ValidationError("\(option) takes NAME=VALUE, not \(value)")
            }
            let name = String(value[..<equals])
            guard !name.contains("/"), result[name] == nil else {
                throw ValidationError("\(option): bad or repeated name \(name)")
            }
            result[name] = String(value[value.index(after: equals)...])
        }
        return result
    }
}
