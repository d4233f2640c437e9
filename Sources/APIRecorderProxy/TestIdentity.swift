import APIRecorder
import HTTPTypes
import Synchronization

/// Where a request's test id comes from, first match wins:
/// 1. the `X-Test-ID` header (any spelling: headers are case-insensitive, so aimock's `X-Test-Id` too);
/// 2. the reference's provider-data headers, `X-OGX-Provider-Data` or `X-LlamaStack-Provider-Data`,
///    JSON objects with a `__test_id` member;
/// 3. the id set with `POST /__recorder/test`, for clients that cannot send headers.
/// No id means the fallback folder, as in the reference.
final class TestIdentity: Sendable {
    static let header = HTTPField.Name("X-Test-ID")!
    static let providerDataHeaders = [
        HTTPField.Name("X-OGX-Provider-Data")!, HTTPField.Name("X-LlamaStack-Provider-Data")!,
    ]

    private let current = Mutex<String?>(nil)

    /// Sets (or with `nil`, clears) the id used when a request names none.
    func setCurrent(_ testID: String?) {
        current.withLock { $0 = testID }
    }

    var currentTestID: String? { current.withLock { $0 } }

    /// The test id of a request with these headers.
    func testID(for headers: HTTPFields) -> String? {
        // One pass, without the joined copy `headers[name]` makes even of a single field.
        var first: String?
        var repeated = false
        for field in headers where field.name == Self.header {
            if first == nil { first = field.value } else { repeated = true }
        }
        if repeated { first = headers[Self.header] }
        if let first, !first.isEmpty { return first }
        for name in Self.providerDataHeaders {
            if let value = headers[name], let data = try? JSONValue(parsing: value),
                let testID = data["__test_id"]?.stringValue
            {
                return testID
            }
        }
        return currentTestID
    }
}
