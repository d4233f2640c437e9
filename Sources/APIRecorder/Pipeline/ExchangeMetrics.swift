package import CoreMetrics
import Synchronization

/// The pipeline's metrics, through swift-metrics (the proxy exports them with swift-prometheus at
/// `GET /__recorder/metrics`): exchanges by route and outcome, upstream latency and time to first
/// byte, and exchanges in flight.
///
/// Each handle is made once per label set and kept, so an exchange costs a dictionary look-up
/// under a lock and the handlers' own atomic updates.
package final class ExchangeMetrics: Sendable {
    private let factory: any MetricsFactory
    private let inFlight: Meter
    private let counters = Mutex<[CounterKey: Counter]>([:])
    private let latencies = Mutex<[String: Timer]>([:])
    private let firstBytes = Mutex<[String: Timer]>([:])

    package init(factory: any MetricsFactory) {
        self.factory = factory
        inFlight = Meter(label: "api_recorder_in_flight_exchanges", factory: factory)
        inFlight.set(0)
    }

    func started() {
        inFlight.increment()
    }

    func ended(route: String, outcome: JournalOutcome) {
        inFlight.decrement()
        let key = CounterKey(route: route, outcome: outcome)
        let counter = counters.withLock { counters in
            if let counter = counters[key] { return counter }
            let counter = Counter(
                label: "api_recorder_requests_total",
                dimensions: [("route", route), ("outcome", outcome.rawValue)],
                factory: factory
            )
            counters[key] = counter
            return counter
        }
        counter.increment()
    }

    private struct CounterKey: Hashable {
        var route: String
        var outcome: JournalOutcome
    }

    /// From sending the request upstream to the end of its answer.
    func upstreamLatency(route: String, _ duration: Duration) {
        timer(route, in: latencies, label: "api_recorder_upstream_latency_seconds")
            .recordNanoseconds(Self.nanoseconds(duration))
    }

    /// From sending the request upstream to its response head.
    func upstreamFirstByte(route: String, _ duration: Duration) {
        timer(route, in: firstBytes, label: "api_recorder_upstream_ttfb_seconds")
            .recordNanoseconds(Self.nanoseconds(duration))
    }

    private static func nanoseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }

    private func timer(_ route: String, in table: borrowing Mutex<[String: Timer]>, label: String) -> Timer {
        table.withLock { timers in
            if let timer = timers[route] { return timer }
            let timer = Timer(label: label, dimensions: [("route", route)], factory: factory)
            timers[route] = timer
            return timer
        }
    }
}
