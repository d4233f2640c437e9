import Dispatch
import Foundation
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The command `api-recorder run` runs: spawned with default signal dispositions (the proxy's
/// own ignored signals must not reach it), the terminal and standard streams of `run` itself,
/// and the signals `run` receives forwarded to it.
struct ChildProcess {
    /// Why a command could not start, with the shell's exit status for it.
    struct LaunchError: Error, CustomStringConvertible {
        let command: String
        let code: Int32

        /// 127 when the command is not found, 126 when it cannot be executed.
        var status: Int32 { code == ENOENT ? 127 : 126 }
        var description: String {
            code == ENOENT ? "\(command): command not found" : "\(command): \(String(cString: strerror(code)))"
        }
    }

    let arguments: [String]
    let environment: [String: String]
    let logger: Logger

    /// Runs the command to its end and returns its exit status as a shell gives it (128 + N for
    /// a command killed by signal N), or why it could not start. Cancelling the task sends the
    /// command SIGTERM.
    func run() async -> Result<Int32, LaunchError> {
        let forwarding = SignalForwarding(logger: logger)
        defer { forwarding.cancel() }
        let pid: pid_t
        switch spawn() {
        case .success(let spawned): pid = spawned
        case .failure(let error): return .failure(error)
        }
        forwarding.target(pid)
        logger.debug("started", metadata: ["command": "\(arguments.joined(separator: " "))", "pid": "\(pid)"])
        let status = await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                // waitpid blocks: a thread of its own, not one of the concurrency pool's.
                let waiter = Thread {
                    var status: Int32 = 0
                    while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
                    continuation.resume(returning: Self.shellStatus(status))
                }
                waiter.start()
            }
        } onCancel: {
            kill(pid, SIGTERM)
        }
        return .success(status)
    }

    private func spawn() -> Result<pid_t, LaunchError> {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigdefault(&attributes, &all)
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        let argv = arguments.map { strdup($0) } + [nil]
        let envp = environment.sorted { $0.key < $1.key }.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for pointer in argv + envp { free(pointer) } }
        var pid: pid_t = 0
        // posix_spawnp looks the command up in run's own PATH, as a shell would.
        let result = posix_spawnp(&pid, arguments[0], nil, &attributes, argv, envp)
        return result == 0 ? .success(pid) : .failure(LaunchError(command: arguments[0], code: result))
    }

    private static func shellStatus(_ status: Int32) -> Int32 {
        let signal = status & 0x7f
        return signal == 0 ? (status >> 8) & 0xff : 128 + signal
    }
}

/// While the command runs, `run` passes on the signals meant for it: SIGTERM, SIGHUP and SIGQUIT
/// always, SIGINT unless it came from the terminal (which sends it to the command as well).
private final class SignalForwarding: @unchecked Sendable {
    private static let forwarded = [SIGTERM, SIGHUP, SIGQUIT, SIGINT]
    private let pid = Mutex<pid_t>(0)
    private var sources: [any DispatchSourceSignal] = []
    private let logger: Logger

    init(logger: Logger) {
        self.logger = logger
        sources = Self.forwarded.map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [self] in forward(number) }
            source.resume()
            return source
        }
    }

    private func forward(_ number: Int32) {
        let target = pid.withLock { $0 }
        guard target > 0 else { return }
        if number == SIGINT, Self.terminalSendsInterrupts() { return }
        logger.debug("forwarding a signal to the command", metadata: ["signal": "\(number)"])
        kill(target, number)
    }

    func target(_ pid: pid_t) {
        self.pid.withLock { $0 = pid }
    }

    /// Stops forwarding; the signals have their default effect again.
    func cancel() {
        for source in sources { source.cancel() }
        for number in Self.forwarded { signal(number, SIG_DFL) }
    }

    /// Whether `run` is in the foreground of a terminal, whose Ctrl-C interrupts the whole group.
    private static func terminalSendsInterrupts() -> Bool {
        isatty(STDIN_FILENO) == 1 && tcgetpgrp(STDIN_FILENO) == getpgrp()
    }
}
