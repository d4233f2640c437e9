import Synchronization

/// The preparations of recent requests, by everything an adapter's `prepare` reads, so that a
/// request sent again is not parsed, redacted and hashed again. A load test that points its client
/// at the proxy sends one request thousands of times; a hit costs a hash of the body's bytes and
/// one comparison instead of a JSON parse, the canonical text and SHA-256.
///
/// Only adapters whose `prepare` is a function of those parts of the request (never its headers)
/// take part (``ProviderAdapter/preparationFingerprint``). Bounded: bodies over 64 KiB are not
/// kept, and past 2,048 entries or 2 MiB of bodies (a parsed body takes a few times its bytes)
/// the cache starts over.
package final class PreparationCache: Sendable {
    /// Everything `prepare` reads, and which adapter (and configuration) prepared it.
    struct Key: Hashable, Sendable {
        var adapter: ObjectIdentifier
        var fingerprint: Int
        var method: String
        var path: String
        var query: String?
        var recordedBase: String
        var testID: String?
        var upstreamKey: String?
        var body: [UInt8]

        init(_ request: ExchangeRequest, adapter: ObjectIdentifier, fingerprint: Int) {
            self.adapter = adapter
            self.fingerprint = fingerprint
            method = request.method
            path = request.path
            query = request.query
            recordedBase = request.recordedBase
            testID = request.testID
            upstreamKey = request.upstreamKey
            body = request.body
        }

        func hash(into hasher: inout Hasher) {
            hasher.combine(adapter)
            hasher.combine(fingerprint)
            hasher.combine(method)
            hasher.combine(path)
            hasher.combine(query)
            hasher.combine(recordedBase)
            hasher.combine(testID)
            hasher.combine(upstreamKey)
            // The bytes at once: `[UInt8]`'s own hashing feeds them one by one.
            body.withUnsafeBytes { hasher.combine(bytes: $0) }
        }
    }

    private struct Entries {
        var table: [Key: any Sendable] = [:]
        var bodyBytes = 0
    }

    private let entries = Mutex(Entries())
    static let maximumBodyBytes = 64 << 10
    private let entryLimit = 2048
    private let byteLimit = 2 << 20

    package init() {}

    /// Prepares `request` with `adapter`, or reuses the preparation of an identical request.
    package func prepare<Adapter: ProviderAdapter>(
        _ request: ExchangeRequest,
        with adapter: Adapter
    ) throws(ExchangeError) -> PreparedExchange<Adapter.Details> {
        guard let fingerprint = adapter.preparationFingerprint, request.body.count <= Self.maximumBodyBytes else {
            return try adapter.prepare(request)
        }
        let key = Key(request, adapter: ObjectIdentifier(Adapter.self), fingerprint: fingerprint)
        if var kept = entries.withLock({ $0.table[key] }) as? PreparedExchange<Adapter.Details> {
            // The headers are this request's: they go upstream, and `prepare` did not read them.
            kept.request = request
            return kept
        }
        let prepared = try adapter.prepare(request)
        entries.withLock { entries in
            if entries.table.count >= entryLimit || entries.bodyBytes + request.body.count > byteLimit {
                entries.table.removeAll(keepingCapacity: true)
                entries.bodyBytes = 0
            }
            if entries.table.updateValue(prepared, forKey: key) == nil { entries.bodyBytes += request.body.count }
        }
        return prepared
    }

    /// How many preparations are kept (for tests).
    package var count: Int { entries.withLock { $0.table.count } }
}
