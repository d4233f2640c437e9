import APIRecorder
import Foundation
import HTTPTypes
import ServerTestSupport
import Synchronization
import Testing

@testable import APIRecorderProxy

/// Only loopback callers, unless told otherwise: what a web page the developer has open can send
/// (a foreign `Host` through DNS rebinding, a foreign or `null` `Origin`, a preflight, `CONNECT`)
/// is refused before any recording is read or anything forwarded.
@Suite("Caller policy")
struct CallerPolicyTests {
    static let testID = "tests/proxy/test_policy.py::test_it"

    // MARK: The rules

    @Test(arguments: [
        "127.0.0.1", "127.0.0.1:8555", "127.1.2.3:1", "localhost", "LOCALHOST:8555", "localhost.:1", "[::1]",
        "[::1]:8555",
    ])
    func loopbackHostsAreAllowed(_ host: String) {
        #expect(CallerPolicy(allowedHosts: [], allowedOrigins: []).isAllowed(host: host))
    }

    @Test(arguments: [
        "attacker.example", "attacker.example:8555", "127.0.0.1.attacker.example", "localhost.attacker.example",
        "128.0.0.1", "127.0.0.256", "127.0.0", "127.1", "0.0.0.0", "[::2]", "::1", "[::1", "127.0.0.1:", "127.0.0.1:x",
        "127.0.0.1:123456", "", ":8555", "[::1]x", "localhost:80:80",
    ])
    func otherHostsAreRefused(_ host: String) {
        #expect(!CallerPolicy(allowedHosts: [], allowedOrigins: []).isAllowed(host: host))
    }

    @Test func allowedHostsWidenTheRule() {
        let policy = CallerPolicy(allowedHosts: ["recorder", "ci-proxy:9000", "[fd00::5]"], allowedOrigins: [])
        #expect(policy.isAllowed(host: "recorder"))
        #expect(policy.isAllowed(host: "RECORDER:8555"))
        #expect(policy.isAllowed(host: "ci-proxy:9000"))
        #expect(!policy.isAllowed(host: "ci-proxy:9001"))
        #expect(!policy.isAllowed(host: "ci-proxy"))
        #expect(policy.isAllowed(host: "[fd00::5]:8555"))
        #expect(!policy.isAllowed(host: "recorder.attacker.example"))
    }

    @Test func aSpecificListeningAddressIsAllowedAWildcardIsNot() {
        #expect(
            CallerPolicy(allowedHosts: [], allowedOrigins: [], listeningHost: "10.0.0.7").isAllowed(
                host: "10.0.0.7:8555"
            )
        )
        #expect(
            !CallerPolicy(allowedHosts: [], allowedOrigins: [], listeningHost: "0.0.0.0").isAllowed(host: "0.0.0.0")
        )
        #expect(!CallerPolicy(allowedHosts: [], allowedOrigins: [], listeningHost: "::").isAllowed(host: "[::]"))
    }

    @Test func originsAreLoopbackOrAllowedAndNeverNull() {
        let policy = CallerPolicy(allowedHosts: [], allowedOrigins: ["https://app.example.test/"])
        for origin in ["http://localhost:3000", "http://127.0.0.1:8555", "https://[::1]", "HTTP://LOCALHOST"] {
            #expect(policy.isAllowed(origin: origin), "\(origin)")
        }
        #expect(policy.isAllowed(origin: "https://app.example.test"))
        for origin in [
            "null", "NULL", "https://attacker.example", "http://localhost.attacker.example", "file://",
            "ftp://localhost",
            "http://localhost@attacker.example", "http://localhost/x", "https://app.example.test:8443", "",
            "http://localhost:3000, https://attacker.example",
        ] {
            #expect(!policy.isAllowed(origin: origin), "\(origin)")
        }
    }

    // MARK: Over real sockets

    /// A raw request (the test controls every header, `Host` included) and the answer's status,
    /// headers and JSON body.
    private func send(
        port: Int,
        method: String = "POST",
        path: String = "/up/chat/completions",
        host: String? = nil,
        headers: [String] = [],
        body: [UInt8] = chatBody("hello")
    ) async throws -> (status: Int, head: String, json: JSONValue?) {
        var head = "\(method) \(path) HTTP/1.1\r\n"
        head += "Host: \(host ?? "127.0.0.1:\(port)")\r\n"
        if host == "" { head = "\(method) \(path) HTTP/1.1\r\n" }
        for header in headers { head += header + "\r\n" }
        head += "X-Test-ID: \(Self.testID)\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n"
        let text = String(decoding: try await rawExchange(port: port, Array(head.utf8) + body).bytes, as: UTF8.self)
        let parts = text.components(separatedBy: "\r\n\r\n")
        let status = Int(parts[0].split(separator: " ").dropFirst().first ?? "") ?? 0
        let json = parts.count > 1 ? try? JSONValue(parsing: parts.dropFirst().joined(separator: "\r\n\r\n")) : nil
        return (status, parts[0], json)
    }

    /// A record-if-missing proxy in front of a fake upstream, and what reached either.
    private func withRecordingProxy(
        _ change: (inout ProxyConfiguration) -> Void = { _ in },
        _ body: (_ port: Int, _ upstream: FakeUpstream, _ directory: TemporaryDirectory) async throws -> Void
    ) async throws {
        let directory = try TemporaryDirectory()
        let upstream = FakeUpstream()
        try await withRunning(upstream.application) { upstreamPort in
            let configuration = ProxyConfiguration.test(
                mode: .recordIfMissing,
                root: directory.path,
                upstreamPort: upstreamPort
            ).with(change)
            try await withProxy(configuration) { port in try await body(port, upstream, directory) }
        }
    }

    @Test(arguments: [
        (["Host: attacker.example"], "forbidden_host"),
        (["Host: attacker.example:8555"], "forbidden_host"),
        ([], "forbidden_host"),  // no Host at all
        (["Origin: https://attacker.example"], "forbidden_origin"),
        (["Origin: null", "Content-Type: text/plain"], "forbidden_origin"),
    ])
    func foreignCallersAreRefusedWithNothingForwardedOrWritten(_ headers: [String], _ type: String) async throws {
        try await withRecordingProxy { port, upstream, directory in
            let host = headers.first { $0.hasPrefix("Host: ") }.map { String($0.dropFirst(6)) }
            let others = headers.filter { !$0.hasPrefix("Host: ") }
            let noHost = headers.isEmpty
            let answer = try await send(port: port, host: noHost ? "" : host, headers: others)
            #expect(answer.status == 403, "\(answer.head)")
            #expect(answer.json?["error"]?["type"]?.stringValue == type, "\(String(describing: answer.json))")
            #expect(!answer.head.lowercased().contains("access-control-allow-origin"))
            #expect(upstream.calls.load(ordering: .relaxed) == 0)
            #expect(directory.files().isEmpty, "\(directory.files())")
            // A loopback caller is still served, and recorded.
            #expect(try await send(port: port).status == 200)
            #expect(upstream.calls.load(ordering: .relaxed) == 1)
        }
    }

    @Test func anAbsoluteTargetNamingAForeignHostIsRefused() async throws {
        try await withRecordingProxy { port, upstream, directory in
            for target in [
                "http://attacker.example/up/chat/completions", "http://127.0.0.1@attacker.example/up/chat/completions",
            ] {
                let answer = try await send(port: port, path: target)
                #expect(answer.status == 403, "\(target): \(answer.head)")
                #expect(answer.json?["error"]?["type"] == "forbidden_host")
            }
            // A second Host (the first loopback, the second not) is refused too.
            let twice = try await send(port: port, headers: ["Host: attacker.example"])
            #expect(twice.status == 400, "\(twice.head)")
            #expect(upstream.calls.load(ordering: .relaxed) == 0)
            #expect(directory.files().isEmpty)
            let local = try await send(port: port, path: "http://127.0.0.1:\(port)/up/chat/completions")
            #expect(local.status == 200, "\(local.head)")
        }
    }

    @Test func replayAnswersNoForeignCallerFromTheRecordings() async throws {
        try await withRecordingProxy { port, upstream, directory in
            #expect(try await send(port: port).status == 200)
            let replay = ProxyConfiguration.test(mode: .replay, root: directory.path, upstreamPort: nil)
            try await withProxy(replay) { replayPort in
                #expect(try await send(port: replayPort).status == 200)
                let answer = try await send(port: replayPort, host: "rebound.attacker.example:\(replayPort)")
                #expect(answer.status == 403)
                #expect(answer.json?["error"]?["type"] == "forbidden_host")
                let report = try await TestClient(port: replayPort).send(.get, "/__recorder/report")
                #expect(report.json?["replayed"] == 1, "\(report.text)")
            }
        }
    }

    @Test func controlEndpointsFollowTheSameRules() async throws {
        try await withRecordingProxy { port, _, _ in
            let faults = Array(#"{"test_id": "tests/a.py::test_b", "faults": [{"status": 500}]}"#.utf8)
            for headers in [["Origin: https://attacker.example"], ["Origin: null", "Content-Type: text/plain"]] {
                let answer = try await send(port: port, path: "/__recorder/faults", headers: headers, body: faults)
                #expect(answer.status == 403)
                #expect(answer.json?["error"]?["type"] == "forbidden_origin")
            }
            let test = Array(#"{"test_id": "tests/a.py::test_b"}"#.utf8)
            let refused = try await send(port: port, path: "/__recorder/test", host: "attacker.example", body: test)
            #expect(refused.status == 403)
            #expect(refused.json?["error"]?["type"] == "forbidden_host")
            let environment = try await send(
                port: port,
                method: "GET",
                path: "/__recorder/environment",
                host: "evil.example",
                body: []
            )
            #expect(environment.status == 403)
            // Nothing took effect.
            let listed = try await TestClient(port: port).send(.get, "/__recorder/faults?test_id=tests/a.py::test_b")
            #expect(listed.json?["faults"] == [], "\(listed.text)")
            #expect(try await TestClient(port: port).send(.get, "/__recorder/report").json?["test_id"] == .null)
            #expect(try await send(port: port, path: "/__recorder/faults", body: faults).status == 200)
        }
    }

    @Test func preflightsAreAnsweredHereOnlyForAllowedOrigins() async throws {
        try await withRecordingProxy { port, upstream, directory in
            let preflight = [
                "Origin: http://localhost:3000", "Access-Control-Request-Method: POST",
                "Access-Control-Request-Headers: authorization, content-type, x-test-id",
                "Access-Control-Request-Private-Network: true",
            ]
            let allowed = try await send(port: port, method: "OPTIONS", headers: preflight, body: [])
            #expect(allowed.status == 204, "\(allowed.head)")
            let head = allowed.head.lowercased()
            #expect(head.contains("access-control-allow-origin: http://localhost:3000"))
            #expect(!head.contains("access-control-allow-origin: *"))
            #expect(head.contains("access-control-allow-headers: authorization, content-type, x-test-id"))
            #expect(head.contains("access-control-allow-methods: get, head, post, put, patch, delete"))
            #expect(head.contains("access-control-allow-private-network: true"))
            #expect(head.contains("vary: origin"))

            let foreign = ["Origin: https://attacker.example", "Access-Control-Request-Method: POST"]
            let refused = try await send(port: port, method: "OPTIONS", headers: foreign, body: [])
            #expect(refused.status == 403)
            #expect(!refused.head.lowercased().contains("access-control-allow"))

            // A plain OPTIONS (no Origin) learns the methods, and is not forwarded either.
            let plain = try await send(port: port, method: "OPTIONS", body: [])
            #expect(plain.status == 204)
            #expect(plain.head.lowercased().contains("allow: get, head, post, put, patch, delete, options"))
            #expect(upstream.calls.load(ordering: .relaxed) == 0)
            #expect(directory.files().isEmpty, "\(directory.files())")

            // The request after the preflight is answered with the origin named.
            let actual = try await send(port: port, headers: ["Origin: http://localhost:3000"])
            #expect(actual.status == 200)
            #expect(actual.head.lowercased().contains("access-control-allow-origin: http://localhost:3000"))
        }
    }

    @Test(arguments: ["CONNECT", "TRACE", "PROPFIND"])
    func methodsNoProviderUsesGet405AndAreNeverForwarded(_ method: String) async throws {
        try await withRecordingProxy { port, upstream, directory in
            let path = method == "CONNECT" ? "api.openai.com:443" : "/up/chat/completions"
            let answer = try await send(port: port, method: method, path: path)
            #expect(answer.status == 405, "\(answer.head)")
            // HTTP gives an answer to CONNECT no body (NIO's encoder drops it); the others have one.
            if method != "CONNECT" { #expect(answer.json?["error"]?["type"] == "method_not_allowed") }
            #expect(answer.head.lowercased().contains("allow: get, head, post, put, patch, delete, options"))
            #expect(upstream.calls.load(ordering: .relaxed) == 0)
            #expect(directory.files().isEmpty)
        }
    }

    @Test func allowedHostsAndOriginsAreServed() async throws {
        let allow: (inout ProxyConfiguration) -> Void = {
            $0.allowedHosts = ["recorder"]
            $0.allowedOrigins = ["https://app.example.test"]
        }
        try await withRecordingProxy(allow) { port, upstream, _ in
            #expect(try await send(port: port, host: "recorder:\(port)").status == 200)
            let answer = try await send(port: port, headers: ["Origin: https://app.example.test"])
            #expect(answer.status == 200)
            #expect(answer.head.lowercased().contains("access-control-allow-origin: https://app.example.test"))
            #expect(try await send(port: port, host: "other:\(port)").status == 403)
            #expect(upstream.calls.load(ordering: .relaxed) == 1)
        }
    }

    @Test func refusalsComeInTheRouteProvidersShape() async throws {
        let directory = try TemporaryDirectory()
        var configuration = ProxyConfiguration.test(mode: .replay, root: directory.path, upstreamPort: nil)
        configuration.routes.append(ProxyRoute(name: "anthropic", upstream: "http://127.0.0.1:9/v1", adapter: .http))
        try await withProxy(configuration) { port in
            let answer = try await send(port: port, path: "/anthropic/messages", host: "attacker.example")
            #expect(answer.status == 403)
            #expect(answer.json?["type"] == "error", "\(String(describing: answer.json))")
            #expect(answer.json?["error"]?["type"] == "forbidden_host")
        }
    }

    // MARK: Bad input

    @Test(arguments: ["=", "==", "=429", ";=;", "status=", "delay=1e309s", "times=0", "status=429;;times=x"])
    func aBadFaultHeaderIsA400AndTheProxyStaysUp(_ spec: String) async throws {
        try await withRecordingProxy { port, upstream, _ in
            let answer = try await send(port: port, headers: ["X-Recorder-Fault: \(spec)"])
            #expect(answer.status == 400, "\(spec): \(answer.head)")
            #expect(answer.json?["error"]?["type"] == "invalid_fault", "\(String(describing: answer.json))")
            let control = try await send(
                port: port,
                path: "/__recorder/faults",
                body: Array(#"{"faults": [{"spec": "\#(spec)"}]}"#.utf8)
            )
            #expect(control.status == 400, "\(spec): \(control.head)")
            #expect(upstream.calls.load(ordering: .relaxed) == 0)
            #expect(try await send(port: port).status == 200)
        }
    }

    @Test func aMissQuotingNaNIsStillStrictJSON() async throws {
        try await withRecordingProxy { port, _, directory in
            #expect(try await send(port: port).status == 200)
            let replay = ProxyConfiguration.test(mode: .replay, root: directory.path, upstreamPort: nil)
            try await withProxy(replay) { replayPort in
                let body =
                    #"{"model": "test-model", "messages": [{"role": "user", "content": "hello"}], "#
                    + #""stream": false, "temperature": NaN, "seed": -Infinity}"#
                let reply = try await rawExchange(
                    port: replayPort,
                    Array(
                        ("POST /up/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Test-ID: \(Self.testID)\r\n"
                            + "Content-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n" + body).utf8
                    )
                )
                let text = String(decoding: reply.bytes, as: UTF8.self)
                #expect(text.hasPrefix("HTTP/1.1 404"), "\(text.prefix(300))")
                let json = text.components(separatedBy: "\r\n\r\n").dropFirst().joined()
                #expect(json.contains("NaN"), "the difference is shown: \(json)")
                // Foundation's parser is strict: no NaN or Infinity literals.
                #expect((try? JSONSerialization.jsonObject(with: Data(json.utf8))) != nil, "\(json)")
            }
        }
    }

    @Test(arguments: [
        ("Content-Length: 90\r\n", #"{"model": "m", "messages": [{"role": "user", "content": "hello"}]}"#),
        ("Transfer-Encoding: chunked\r\n", "10\r\n{\"model\": \"m\", \"\r\n"),
    ])
    func aBodyCutShortIsNeverForwardedOrRecorded(_ framing: String, _ body: String) async throws {
        try await withRecordingProxy { port, upstream, directory in
            let head =
                "POST /up/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nX-Test-ID: \(Self.testID)\r\n"
                + framing + "\r\n"
            let reply = try await rawExchange(port: port, Array((head + body).utf8), finishSending: true)
            let text = String(decoding: reply.bytes, as: UTF8.self)
            #expect(text.hasPrefix("HTTP/1.1 400"), "\(text.prefix(200))")
            #expect(text.contains(#""type":"invalid_request_error""#))
            try await Task.sleep(for: .milliseconds(200))
            #expect(upstream.calls.load(ordering: .relaxed) == 0)
            #expect(directory.files().isEmpty, "\(directory.files())")
            #expect(try await send(port: port).status == 200)
        }
    }

    @Test(arguments: [
        #"{"test_id": 5}"#, #"{"test_id": "../../etc/x.py::t"}"#, #"{"test_id": "/abs/path.py::t"}"#,
        #"{"test_id": "a/\u0000/b.py::t"}"#, "[]", "{", "\u{FF}", "",
    ])
    func aBadTestIDBodyIsA400(_ body: String) async throws {
        try await withRecordingProxy { port, _, directory in
            let answer = try await send(port: port, path: "/__recorder/test", body: Array(body.utf8))
            #expect(answer.status == 400, "\(body): \(answer.head)")
            #expect(answer.json?["error"]?["type"]?.stringValue != nil)
            #expect(directory.files().isEmpty)
        }
    }
}
