import Dispatch

extension Array where Element: Sendable {
    /// `map` on every core, in order: what `hash` and `verify` do to each file of a tree.
    func concurrentMap<Result>(_ transform: @Sendable (Element) -> Result) -> [Result] {
        guard count > 1 else { return map(transform) }
        let results = UnsafeMutableBufferPointer<Result>.allocate(capacity: count)
        defer { results.deallocate() }
        let chunk = 16
        let chunks = (count + chunk - 1) / chunk
        nonisolated(unsafe) let output = results
        withoutActuallyEscaping(transform) { transform in
            DispatchQueue.concurrentPerform(iterations: chunks) { part in
                for index in part * chunk..<Swift.min(count, (part + 1) * chunk) {
                    (output.baseAddress! + index).initialize(to: transform(self[index]))
                }
            }
        }
        let array = [Result](results)
        _ = results.deinitialize()
        return array
    }

    /// The elements in batches of `size`, for work that must not hold a whole tree at once.
    func batches(of size: Int) -> [ArraySlice<Element>] {
        stride(from: 0, to: count, by: size).map { self[$0..<Swift.min(count, $0 + size)] }
    }
}
