/// Finds the recording a missed request was probably meant to replay: among the recordings of the
/// same method and endpoint (or the same tool) in the folders that were searched, the one whose
/// normalised request differs least from it (fewest differing paths; the same test id wins a tie).
enum NearestRecording {
    /// The diagnosis of a miss, or `nil` when the folders hold no recording of that endpoint.
    static func diagnose(_ request: RecorderRequest, folders: [String], store: RecordingStore) -> MissDiagnosis? {
        guard let wanted = Shape(request.identity) else { return nil }
        var best: (recorded: RecordedRequest, shape: Shape, differences: [JSONDifference], truncated: Bool)?
        for recorded in store.recordedRequests(in: folders) {
            guard let shape = Shape(recorded.identity), shape.sameEndpoint(as: wanted) else { continue }
            // Only as many differences as the best so far has are worth counting.
            let limit = best.map { $0.differences.count + 1 } ?? 50
            let (differences, truncated) = JSONDifference.between(
                recorded: shape.body,
                requested: wanted.body,
                limit: limit
            )
            var extra = shape.extraDifferences(to: wanted)
            extra += differences
            if let current = best {
                let better =
                    extra.count < current.differences.count
                    || (extra.count == current.differences.count && shape.testID == wanted.testID
                        && current.shape.testID != wanted.testID)
                guard better else { continue }
            }
            best = (recorded, shape, extra, truncated)
        }
        guard let best else { return nil }
        let hints = DriftHints.hints(
            for: best.differences,
            recordedTestID: best.shape.testID,
            requestedTestID: wanted.testID,
            testIDIsHashed: wanted.hashesTestID
        )
        return MissDiagnosis(
            file: store.relativePath(best.recorded.path),
            testID: best.recorded.testID,
            differences: best.differences,
            moreDifferences: best.truncated,
            hints: hints
        )
    }

    /// The parts of an identity a diagnosis compares: what must match (kind, method, endpoint or
    /// tool), the body that is diffed, and the test id.
    struct Shape {
        enum Kind: Equatable { case inference, http, tool }
        let kind: Kind
        /// Method and endpoint path (inference, HTTP) or provider and tool name (tools).
        let endpoint: [String]
        /// The query of a plain-HTTP URL, compared apart.
        let query: String?
        /// The normalised body, payload, or `{"kwargs": ...}` of a tool call.
        let body: JSONValue
        let testID: String?
        /// Whether the test id is part of the identity (not for tools or model lists).
        let hashesTestID: Bool

        init?(_ identity: RequestIdentity) {
            guard case .object(let input) = identity.hashInput else { return nil }
            switch identity {
            case .inference(let method, _, _, let testID):
                kind = .inference
                endpoint = [method.uppercased(), input["endpoint"]?.stringValue ?? ""]
                query = nil
                body = input["body"] ?? .null
                self.testID = testID
                hashesTestID = input.index(of: "test_id") != nil
            case .http(let testID, let url, let method, _):
                kind = .http
                let question = url.firstIndex(of: "?")
                endpoint = [method.uppercased(), String(url[..<(question ?? url.endIndex)])]
                query = question.map { String(url[url.index(after: $0)...]) }
                body = input["payload"] ?? .null
                self.testID = testID
                hashesTestID = true
            case .tool(let provider, let toolName, _):
                kind = .tool
                endpoint = [provider.stringValue ?? "", toolName.stringValue ?? ""]
                query = nil
                body = ["kwargs": input["kwargs"] ?? .null]
                testID = nil
                hashesTestID = false
            }
        }

        func sameEndpoint(as other: Shape) -> Bool { kind == other.kind && endpoint == other.endpoint }

        /// Differences outside the body: a plain-HTTP URL's query.
        func extraDifferences(to other: Shape) -> [JSONDifference] {
            guard query != other.query else { return [] }
            return [
                JSONDifference(
                    path: "(query)",
                    recorded: query.map(JSONValue.string),
                    requested: other.query.map(JSONValue.string)
                )
            ]
        }
    }
}
