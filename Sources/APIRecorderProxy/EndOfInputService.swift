import Foundation
public import ServiceLifecycle
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A service that returns when standard input reaches its end (`serve --until-stdin-closes`).
///
/// A test runner that starts the proxy with a pipe as its input keeps the pipe's other end; when
/// the runner exits, even killed, the pipe closes and the proxy shuts down gracefully instead of
/// living on. Run it with ``runUntilSignalled(_:grace:signals:alongside:logger:)``'s `alongside`.
/// Whatever arrives on the input is read and ignored.
public struct EndOfInputService: Service {
    public init() {}

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await Self.endOfInput()
        }
    }

    /// Waits, without holding a thread, for the end of standard input (or cancellation).
    private static func endOfInput() async {
        let watch = InputWatch()
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in watch.start(continuation) }
        } onCancel: {
            watch.finish()
        }
    }
}

/// A thread blocked reading standard input, and the one continuation it resumes at the end.
/// (A blocking read on a thread of its own: it holds none of the concurrency pool's threads, and
/// when the service is cancelled first the thread simply stays blocked until the process exits.)
private final class InputWatch: Sendable {
    private let state = Mutex<(continuation: CheckedContinuation<Void, Never>?, finished: Bool)>((nil, false))

    init() {
        let reader = Thread { [self] in
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let count = read(STDIN_FILENO, &buffer, buffer.count)
                if count == 0 || (count < 0 && errno != EINTR && errno != EAGAIN) { break }
            }
            finish()
        }
        reader.start()
    }

    /// Resumes `continuation` at the end of the input, at once if it has been reached.
    func start(_ continuation: CheckedContinuation<Void, Never>) {
        let finishedAlready = state.withLock { state in
            if state.finished { return true }
            state.continuation = continuation
            return false
        }
        if finishedAlready { continuation.resume() }
    }

    /// Resumes the waiter, once.
    func finish() {
        let continuation = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard !state.finished else { return nil }
            state.finished = true
            defer { state.continuation = nil }
            return state.continuation
        }
        continuation?.resume()
    }
}
