import APIRecorder
import HTTPTypes

/// Who may drive the proxy. It holds real API keys (`--upstream-key`) and the recordings, and a
/// web page the developer has open can send it requests: with a foreign `Host` (DNS rebinding),
/// with a foreign `Origin` (a simple, unpreflighted `fetch`), or as a form post (`Origin: null`).
/// The rules, applied to every request before a recording is read or anything is forwarded (the
/// control endpoints included), as the MCP specification asks of local servers:
/// - `Host` names a loopback address (`127.0.0.0/8`, `localhost`, `[::1]`, any port), the address
///   the proxy was told to listen on, or a name given with `--allow-host`; else `403 forbidden_host`;
/// - an `Origin`, when there is one, is loopback or given with `--allow-origin`; `null` never is;
///   else `403 forbidden_origin` (the SDKs send no `Origin`);
/// - `OPTIONS` is answered here, never forwarded: a CORS preflight of an allowed origin gets the
///   `Access-Control-Allow-*` headers for that origin (never `*`);
/// - methods no provider API uses (`CONNECT`, `TRACE` and any other outside ``forwardedMethods``)
///   get `405`.
struct CallerPolicy: Sendable {
    /// The methods forwarded (and recorded); `OPTIONS` is answered by the proxy itself.
    static let forwardedMethods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
    /// The `Allow` header of a 405, and the methods a preflight allows.
    static let allowedMethods = (forwardedMethods + ["OPTIONS"]).joined(separator: ", ")

    /// Lower-cased host names allowed on any port.
    private let hosts: Set<String>
    /// Lower-cased `host:port` pairs allowed on that port only.
    private let hostsWithPort: Set<String>
    /// Lower-cased origins, without a trailing `/`.
    private let origins: Set<String>

    /// - Parameters:
    ///   - allowedHosts: `--allow-host` names (`NAME` or `NAME:PORT`).
    ///   - allowedOrigins: `--allow-origin` origins (`https://app.example.test`).
    ///   - listeningHost: `--host`; a specific address (not a wildcard) is allowed as a `Host`,
    ///     since clients of a proxy told to listen there name it so.
    init(allowedHosts: [String], allowedOrigins: [String], listeningHost: String = "127.0.0.1") {
        var hosts: Set<String> = []
        var hostsWithPort: Set<String> = []
        for entry in allowedHosts.map({ $0.lowercased() }) where !entry.isEmpty {
            switch Self.split(hostAndPort: entry) {
            case (let name, let port?)?: hostsWithPort.insert("\(name):\(port)")
            case (let name, nil)?: hosts.insert(name)
            case nil: hosts.insert(entry)
            }
        }
        let listening = listeningHost.lowercased().trimmingBrackets
        if !["0.0.0.0", "::", ""].contains(listening) { hosts.insert(listening) }
        self.hosts = hosts
        self.hostsWithPort = hostsWithPort
        self.origins = Set(allowedOrigins.map(Self.normalizedOrigin))
    }

    /// What to do with a request.
    enum Verdict {
        /// Serve it; `origin` is the allowed `Origin` it carried, which the answer names in
        /// `Access-Control-Allow-Origin`.
        case serve(origin: String?)
        /// Answer a CORS preflight (or a plain `OPTIONS`) here.
        case preflight(origin: String?)
        /// Refuse it with this error.
        case refuse(ExchangeError)
    }

    /// The verdict on a request with this method, `Host` (`nil`: none) and `Origin` (`nil`: none).
    func verdict(method: String, host: String?, origin: String?) -> Verdict {
        guard let host else {
            return Self.refusal(
                "forbidden_host",
                "The request has no Host header; the proxy answers only requests that name it by "
                    + "a loopback address (127.0.0.1, localhost, [::1])."
            )
        }
        guard isAllowed(host: host) else {
            return Self.refusal(
                "forbidden_host",
                "The Host \(Self.quoted(host)) is not a loopback address (127.0.0.1, localhost, [::1]); "
                    + "start the proxy with --allow-host NAME to allow it."
            )
        }
        if let origin {
            guard isAllowed(origin: origin) else {
                return Self.refusal(
                    "forbidden_origin",
                    "Requests from the web origin \(Self.quoted(origin)) are refused; "
                        + "only loopback origins are allowed, and others given with --allow-origin ORIGIN "
                        + "(never null)."
                )
            }
        }
        if method == "OPTIONS" { return .preflight(origin: origin) }
        guard Self.forwardedMethods.contains(method) else {
            return .refuse(
                ExchangeError(
                    status: 405,
                    type: "method_not_allowed",
                    message: "The method \(Self.quoted(method)) is not used by any provider API and is never "
                        + "forwarded; use \(Self.allowedMethods)."
                )
            )
        }
        return .serve(origin: origin)
    }

    /// The refusal of a request whose target is in absolute form (`POST http://name/path`) and
    /// names a host that is not allowed: that host is the request's (RFC 9112, 3.2.2), whatever
    /// its `Host` says. `nil` for any other target.
    func refusal(ofTarget target: String) -> ExchangeError? {
        guard let authority = Self.authority(ofAbsoluteTarget: target), !isAllowed(host: authority) else { return nil }
        return ExchangeError(
            status: 403,
            type: "forbidden_host",
            message: "The request target names the host \(Self.quoted(authority)), which is not a loopback "
                + "address; the proxy is not a forward proxy (use --allow-host NAME to allow a name)."
        )
    }

    /// The authority of a target in absolute form (`scheme://authority/...`), without user info;
    /// `nil` for a target in origin form (`/path`), `*`, or authority form.
    static func authority(ofAbsoluteTarget target: String) -> String? {
        // On bytes: the delimiters are ASCII, and a combining mark must not hide one.
        let bytes = Array(target.utf8)
        guard bytes.first != UInt8(ascii: "/"), bytes.count > 3,
            let start = (0..<(bytes.count - 2)).first(where: { bytes[$0..<($0 + 3)].elementsEqual("://".utf8) })
        else { return nil }
        let rest = bytes[(start + 3)...]
        let end =
            rest.firstIndex { [UInt8(ascii: "/"), UInt8(ascii: "?"), UInt8(ascii: "#")].contains($0) } ?? rest.endIndex
        let authority = rest[..<end]
        let host = authority.lastIndex(of: UInt8(ascii: "@")).map { authority[($0 + 1)...] } ?? authority
        // `http:///path` names no host: the `Host` header's rule decides alone.
        return host.isEmpty ? nil : String(decoding: host, as: UTF8.self)
    }

    /// A `403` of `type`.
    private static func refusal(_ type: String, _ message: String) -> Verdict {
        .refuse(ExchangeError(status: 403, type: type, message: message))
    }

    /// Whether `host` (a `Host` header: a name or address, and maybe a port) may be served.
    func isAllowed(host: String) -> Bool {
        guard case let (name, port)? = Self.split(hostAndPort: host.lowercased()) else { return false }
        if Self.isLoopback(name) || hosts.contains(name) { return true }
        if let port { return hostsWithPort.contains("\(name):\(port)") }
        return false
    }

    /// Whether a request carrying `Origin: origin` may be served.
    func isAllowed(origin: String) -> Bool {
        let normalized = Self.normalizedOrigin(origin)
        if normalized == "null" { return false }
        if origins.contains(normalized) { return true }
        // scheme://host[:port], with http or https only: a loopback page.
        for scheme in ["http://", "https://"] where normalized.hasPrefix(scheme) {
            let authority = normalized.dropFirst(scheme.count)
            guard !authority.contains("/"), !authority.contains("@"),
                case let (name, _)? = Self.split(hostAndPort: String(authority))
            else { return false }
            return Self.isLoopback(name)
        }
        return false
    }

    /// `host[:port]` or `[v6][:port]` as the name (brackets dropped) and the port's digits;
    /// `nil` when it is not of that shape (an empty name, a port that is not 1 to 5 digits).
    static func split(hostAndPort text: String) -> (name: String, port: String?)? {
        var name = Substring(text)
        var port: Substring?
        if name.hasPrefix("[") {
            guard let close = name.firstIndex(of: "]") else { return nil }
            let after = name[name.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { return nil }
                port = after.dropFirst()
            }
            name = name[name.index(after: name.startIndex)..<close]
        } else if let colon = name.lastIndex(of: ":") {
            // One colon: a port; several: a bare IPv6 address, which a Host may not be.
            guard name.firstIndex(of: ":") == colon else { return nil }
            port = name[name.index(after: colon)...]
            name = name[..<colon]
        }
        if let port {
            guard (1...5).contains(port.utf8.count), port.utf8.allSatisfy({ (48...57).contains($0) }) else {
                return nil
            }
        }
        guard !name.isEmpty else { return nil }
        return (String(name), port.map(String.init))
    }

    /// Whether `host` (a name or an address, `[::1]` in brackets or not) is a loopback one.
    static func isLoopbackHost(_ host: String) -> Bool {
        isLoopback(host.lowercased().trimmingBrackets)
    }

    /// `localhost` (or `localhost.`), `::1` or a dotted-decimal `127.x.y.z` (strictly: four numbers up to 255).
    static func isLoopback(_ name: String) -> Bool {
        // `localhost.` is the same name, fully qualified: no DNS answer can make it another's.
        if name == "localhost" || name == "localhost." || name == "::1" || name == "0:0:0:0:0:0:0:1" { return true }
        let octets = name.split(separator: ".", omittingEmptySubsequences: false)
        guard octets.count == 4, octets[0] == "127" else { return false }
        return octets.allSatisfy { octet in
            (1...3).contains(octet.utf8.count) && octet.utf8.allSatisfy { (48...57).contains($0) }
                && Int(octet).map { $0 <= 255 } == true
        }
    }

    /// An origin compared case-insensitively and without a trailing `/`.
    private static func normalizedOrigin(_ origin: String) -> String {
        var lowered = origin.lowercased()
        while lowered.hasSuffix("/") { lowered.removeLast() }
        return lowered
    }

    /// A client's text in a message: quoted, cut to 200 characters.
    private static func quoted(_ text: String) -> String {
        let cut = text.count > 200 ? String(text.prefix(200)) + "…" : text
        return "\"\(cut)\""
    }

    // MARK: CORS

    /// The headers of an answer to a preflight from `origin` (none when there is no origin: a
    /// plain `OPTIONS` learns only `Allow`). `requestedHeaders` is the preflight's
    /// `Access-Control-Request-Headers`, echoed when it holds header names only.
    static func preflightHeaders(origin: String?, requestedHeaders: String?, privateNetwork: Bool) -> HTTPFields {
        var headers: HTTPFields = [.allow: allowedMethods]
        guard let origin else { return headers }
        headers.append(contentsOf: corsHeaders(origin: origin))
        headers[.accessControlAllowMethods] = forwardedMethods.joined(separator: ", ")
        if let requestedHeaders, isHeaderList(requestedHeaders) {
            headers[.accessControlAllowHeaders] = requestedHeaders
        }
        if privateNetwork, let name = HTTPField.Name("Access-Control-Allow-Private-Network") { headers[name] = "true" }
        headers[.accessControlMaxAge] = "600"
        return headers
    }

    /// The headers that let a page of the allowed `origin` read an answer.
    static func corsHeaders(origin: String) -> HTTPFields {
        [.accessControlAllowOrigin: origin, .vary: "Origin"]
    }

    /// Whether `text` is a comma-separated list of header names (token characters only).
    private static func isHeaderList(_ text: String) -> Bool {
        text.utf8.count <= 4096
            && text.utf8.allSatisfy { byte in
                switch byte {
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                    UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: ","),
                    UInt8(ascii: " "):
                    true
                default: false
                }
            }
    }
}

extension String {
    /// `[::1]` as `::1`.
    fileprivate var trimmingBrackets: String {
        hasPrefix("[") && hasSuffix("]") ? String(dropFirst().dropLast()) : self
    }
}
