import APIRecorder
import ArgumentParser
import Foundation

/// `api-recorder-bench ...`: the benchmarks behind scripts/bench-*.sh, which run them against
/// their baselines in the same run and print the ratios. Not part of the shipped `api-recorder`.
@main
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "api-recorder-bench",
        abstract: "Benchmarks. scripts/bench-hash.sh and scripts/bench-proxy.sh run them with their baselines.",
        subcommands: [
            HashBench.self, StreamReplayBench.self, RecordOverheadBench.self, StaticServerBench.self,
            ConcurrentStreamsBench.self, MissDiagnosisBench.self, UnusedListBench.self, PrepareBench.self,
        ]
    )
}

/// Hashes every recording under the folders: parse + identity + SHA-256, from memory.
struct HashBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hash",
        abstract: "Hash every recording under the folders and print MB/s and files/s.",
        discussion: "Files are read into memory first, so the figure is parse + identity + SHA-256 only."
    )

    @Argument(help: "Folders to walk for recordings.")
    var paths: [String]

    @Option(name: .customLong("repeat"), help: "How many passes over the files.")
    var passes: Int = 20

    func run() throws {
        let files = RecordingVerifier.recordingFiles(in: paths)
        var contents: [[UInt8]] = []
        for path in files {
            guard let data = FileManager.default.contents(atPath: path) else {
                FileHandle.standardError.write(Data("\(path): cannot read\n".utf8))
                throw ExitCode(1)
            }
            contents.append([UInt8](data))
        }
        var checksum: UInt8 = 0
        let clock = ContinuousClock()
        let start = clock.now
        for _ in 0..<passes {
            for bytes in contents {
                guard let identity = try? RequestIdentity(recordingFile: bytes) else { continue }
                checksum ^= identity.hash.utf8.first ?? 0
            }
        }
        let elapsed = clock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let totalBytes = contents.reduce(0) { $0 + $1.count } * passes
        let totalFiles = contents.count * passes
        let megabytesPerSecond = Double(totalBytes) / seconds / 1_000_000
        let filesPerSecond = Double(totalFiles) / seconds
        print(
            "swift files=\(totalFiles) bytes=\(totalBytes) seconds=\(String(format: "%.6f", seconds)) "
                + "MB/s=\(String(format: "%.2f", megabytesPerSecond)) files/s=\(String(format: "%.0f", filesPerSecond)) "
                + "checksum=\(checksum)"
        )
    }
}
