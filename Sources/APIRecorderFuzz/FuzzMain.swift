// The fuzz targets of FuzzTargets as one executable (docs/fuzzing.md).
//
// Built by scripts/fuzz.sh (SwiftPM's `--sanitize=fuzzer --sanitize=address`, plus
// `-Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING`), it is a libFuzzer binary: libFuzzer's
// own `main` drives `LLVMFuzzerTestOneInput`, and `API_RECORDER_FUZZ_TARGET` names the target.
// SwiftPM leaves the executable's entry point alone only with its own `--sanitize=fuzzer`; with
// `-Xswiftc -sanitize=fuzzer` alone it links against a `main` of this module, which is not there.
//
// Built normally, it is the corpus runner, `APIRecorderFuzz TARGET PATH...`: every file under
// the paths goes through the target, without sanitizers; exit status 1 when an invariant broke.
import FuzzTargets

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes a line to standard error (the C `stderr` global is not concurrency-safe in Swift 6).
private func printError(_ line: String) {
    let bytes = Array((line + "\n").utf8)
    var written = 0
    while written < bytes.count {
        let count = bytes[written...].withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
        if count <= 0 { return }
        written += count
    }
}

#if FUZZING

/// The target named by `API_RECORDER_FUZZ_TARGET`, read once.
private let selectedTarget: FuzzTarget = {
    let name = getenv("API_RECORDER_FUZZ_TARGET").map { String(cString: $0) } ?? ""
    guard let target = FuzzTarget(rawValue: name) else {
        let names = FuzzTarget.allCases.map(\.rawValue).joined(separator: ", ")
        printError("APIRecorderFuzz: set API_RECORDER_FUZZ_TARGET to one of: \(names) (it is \"\(name)\")")
        exit(2)
    }
    return target
}()

/// Checks the target's name before libFuzzer starts.
@_cdecl("LLVMFuzzerInitialize")
public func fuzzerInitialize(
    _ argc: UnsafeMutablePointer<Int32>?,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>?
) -> Int32 {
    _ = selectedTarget
    return 0
}

/// One input. A broken invariant aborts, which libFuzzer reports as a crash with the input saved.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    do {
        try selectedTarget.run(UnsafeRawBufferPointer(start: data, count: size))
    } catch {
        printError("APIRecorderFuzz \(selectedTarget.rawValue): invariant broken: \(error)")
        abort()
    }
    return 0
}

#else

@main
struct CorpusRunner {
    static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        let names = FuzzTarget.allCases.map(\.rawValue).joined(separator: "|")
        guard let name = arguments.first, let target = FuzzTarget(rawValue: name), arguments.count > 1 else {
            printError(
                """
                usage: APIRecorderFuzz \(names) FILE-OR-FOLDER...
                Runs every file through the fuzz target, without libFuzzer (to reproduce a crash or
                check a corpus). The libFuzzer build is scripts/fuzz.sh's.
                """
            )
            exit(2)
        }
        let files = FuzzCorpus.files(in: Array(arguments.dropFirst()))
        var broken = 0
        for file in files {
            do {
                if let violation = try FuzzCorpus.run(target, file: file) {
                    broken += 1
                    print("\(file): invariant broken: \(violation)")
                }
            } catch {
                broken += 1
                print("\(file): cannot be read: \(error)")
            }
        }
        print("\(name): \(files.count) files, \(broken) with broken invariants")
        exit(broken == 0 && !files.isEmpty ? 0 : 1)
    }
}

#endif
